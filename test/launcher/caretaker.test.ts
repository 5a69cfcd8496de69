// The caretaker against the real docker engine: a crashed container is restarted in place
// (same id, same host port), a crash loop ends failed and stays stopped, HQ's stop is not a
// crash, and the restart history survives the caretaker's process. Then the agent puts the
// records in a real etcd, under its lease.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import Docker from 'dockerode';
import {
  keys, listContainers, networkName, removeContainer, startCaretaker, startContainer,
  type Caretaker, type CareRecord, type ContainerSpec,
} from '../../launcher/index.js';
import { startAgent, type AgentSettings } from '../../launcher/agent/index.js';
import { restartLabel, type RestartPolicy } from '../../plan/index.js';
import { docker } from '../support/docker.js';
import { startEtcd } from '../support/etcd.js';
import { httpGetWhenUp } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { until } from '../support/until.js';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'quarry-caretaker-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

/** A stack of its own for each test, removed (containers and network) when the test ends. */
function stackFor(t: ExecutionContext): string {
  const stack = `caretest${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    for (const c of await listContainers(docker, stack)) await removeContainer(docker, c.id, 0);
    await docker.getNetwork(networkName(stack)).remove().catch(() => undefined);
  });
  return stack;
}

/** A web container that writes its node's pid to /tmp/pid and answers `up` on 8080. */
function webSpec(stack: string, restart?: RestartPolicy): ContainerSpec {
  return {
    stack, name: 'web', kind: 'web', n: 1, image: 'quarry/node:20', env: {}, port: 8080, memoryMb: 64,
    command: ['node', '-e', "require('fs').writeFileSync('/tmp/pid', String(process.pid)); require('http').createServer((q, s) => s.end('up')).listen(8080)"],
    ...(restart && { restart }),
  };
}

/**
 * SIGKILLs the container's process from inside (not through docker: no `kill` event). It waits
 * (up to 30 s) for the process to have written its pid and to be alive, and takes the file
 * away as it kills, so a restarted process is never sent the pid of the one before.
 */
async function killNine(id: string): Promise<void> {
  const script = 'for i in $(seq 300); do p=$(cat /tmp/pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && rm -f /tmp/pid && { kill -9 "$p"; exit $?; }; sleep 0.1; done; echo "no live pid in /tmp/pid" >&2; exit 1';
  // The killed process is the container's main one: docker may end this exec with the
  // container (SIGKILL, 137) before it exits by itself. Either way the kill was made.
  await run('docker', ['exec', id, 'sh', '-c', script]).catch((err: { code?: number }) => {
    if (err.code !== 137) throw err;
  });
}

interface Watching {
  care: Caretaker;
  reports: CareRecord[];
  forgotten: string[];
  lines: string[];
  latest(container: string): CareRecord | undefined;
}

function caretakerFor(t: ExecutionContext, stack: string, stateFile?: string): Watching {
  const reports: CareRecord[] = [];
  const forgotten: string[] = [];
  const lines: string[] = [];
  const care = startCaretaker({
    docker, server: 'local', stack, ...(stateFile && { stateFile }),
    report: (r) => reports.push(r), forget: (s, c) => forgotten.push(`${s}/${c}`), log: (l) => lines.push(l),
  });
  t.teardown(() => care.stop());
  return {
    care, reports, forgotten, lines,
    latest: (container) => reports.filter((r) => r.container === container).at(-1),
  };
}

/** docker's own events for one container so far (its log kept in memory). */
async function eventsOf(id: string, sinceMs: number): Promise<string[]> {
  const stream = (await docker.getEvents({ since: Math.floor(sinceMs / 1000) - 1, until: Date.now() / 1000, filters: { container: [id] } })) as Readable;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { Action: string }).Action);
}

const inspect = (id: string) => docker.getContainer(id).inspect();

test('a container whose process is kill -9ed is restarted at once, as the same container on the same host port', async (t) => {
  const stack = stackFor(t);
  const port = await freePort();
  const w = caretakerFor(t, stack);
  await w.care.ready;
  const c = await startContainer(docker, { ...webSpec(stack), hostPorts: { 8080: port } });
  const created = await inspect(c.id);
  t.is(created.HostConfig.RestartPolicy?.Name, 'no', 'docker does not restart it');
  t.is(created.Config.Labels['quarry.restart'], '5/300000/1000/60000');
  t.deepEqual(c.restart, { attempts: 5, intervalMs: 300_000, delayMs: 1000, maxDelayMs: 60_000 });
  t.is((await httpGetWhenUp(`http://127.0.0.1:${port}/`)).body, 'up');
  await until('its running record', async () => (w.latest(c.name)?.state === 'running' ? true : undefined));
  t.like(w.latest(c.name), { container: `${stack}.web.1`, stack, unit: 'web', server: 'local', restarts: 0 });

  await killNine(c.id);
  const record = await until('restarted once', async () => (w.latest(c.name)?.restarts === 1 ? w.latest(c.name) : undefined));
  t.is(record.state, 'running');
  t.is(record.lastExit?.code, 137);
  t.true(Date.parse(record.lastExit!.at) >= Date.parse(created.State.StartedAt));
  const after = await inspect(c.id);
  t.true(after.State.Running);
  t.true(Date.parse(after.State.StartedAt) > Date.parse(created.State.StartedAt), 'started again');
  t.is(after.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort, String(port));
  t.is((await httpGetWhenUp(`http://127.0.0.1:${port}/`)).body, 'up');
  t.deepEqual(await listContainers(docker, stack).then((l) => l.map((x) => x.id)), [c.id], 'the same container, no other');
  // docker saw no kill: the caretaker took a plain die for a crash.
  const events = await eventsOf(c.id, Date.parse(created.Created));
  t.false(events.includes('kill'), events.join(','));
  t.is(events.filter((e) => e === 'start').length, 2, events.join(','));
  t.true(w.lines.some((l) => l === `caretaker: ${c.name} died (exit 137); restarting it at once (restart 1 of 5 within 5 min)`), w.lines.join('\n'));
  t.deepEqual(w.care.records().map((r) => [r.container, r.state, r.restarts]), [[c.name, 'running', 1]]);
});

test('a crash loop ends failed after its attempts, stays exited, and is not started again', async (t) => {
  const stack = stackFor(t);
  const stateFile = join(scratch, `${stack}.json`);
  const policy: RestartPolicy = { attempts: 2, intervalMs: 60_000, delayMs: 200, maxDelayMs: 200 };
  const w = caretakerFor(t, stack, stateFile);
  await w.care.ready;
  const c = await startContainer(docker, {
    stack, name: 'loop', kind: 'worker', n: 1, image: 'quarry/node:20', env: {}, memoryMb: 64,
    command: ['sh', '-c', 'sleep 0.2; exit 3'], restart: policy,
  });
  t.is((await inspect(c.id)).Config.Labels['quarry.restart'], restartLabel(policy));
  const failed = await until('failed', async () => (w.latest(c.name)?.state === 'failed' ? w.latest(c.name) : undefined));
  t.is(failed.restarts, 2);
  t.is(failed.lastExit?.code, 3);
  t.is(failed.reason, 'it died 3 times within 1 min (restart: attempts 2)');
  // The second restart waited in back-off.
  const backoff = w.reports.find((r) => r.container === c.name && r.state === 'backoff');
  t.truthy(backoff?.nextRestartAt, JSON.stringify(w.reports));
  t.is(backoff?.restarts, 1);
  t.is(w.lines.filter((l) => /failed/.test(l)).length, 1, w.lines.join('\n'));
  t.regex(w.lines.find((l) => /failed/.test(l))!, new RegExp(`^caretaker: ${c.name.replace(/\./g, '\\.')} died \\(exit 3\\); it failed: it died 3 times within 1 min \\(restart: attempts 2\\)\\. It is left stopped`));
  const stoppedAt = await inspect(c.id);
  t.is(stoppedAt.State.Status, 'exited');

  // A caretaker started again (the agent restarted) keeps it failed and does not start it.
  await w.care.stop();
  const again = caretakerFor(t, stack, stateFile);
  await again.care.ready;
  t.like(again.latest(c.name), { state: 'failed', restarts: 2, reason: failed.reason });
  const still = await inspect(c.id);
  t.is(still.State.Status, 'exited');
  t.is(still.State.StartedAt, stoppedAt.State.StartedAt);
  const events = await eventsOf(c.id, Date.parse(stoppedAt.Created));
  t.is(events.filter((e) => e === 'start').length, 3, `the first start and two restarts: ${events.join(',')}`);
});

test('HQ\'s stop (removeContainer) of a running container is not a crash; its record is forgotten on destroy', async (t) => {
  const stack = stackFor(t);
  const w = caretakerFor(t, stack);
  await w.care.ready;
  const c = await startContainer(docker, webSpec(stack));
  await until('its running record', async () => (w.latest(c.name)?.state === 'running' ? true : undefined));
  const created = await inspect(c.id);
  await removeContainer(docker, c.id, 1);
  await until('forgotten', async () => (w.forgotten.includes(`${stack}/${c.name}`) ? true : undefined));
  t.deepEqual(w.care.records(), []);
  t.true(w.reports.filter((r) => r.container === c.name).every((r) => r.state === 'running' && r.restarts === 0), JSON.stringify(w.reports));
  t.false(w.lines.some((l) => l.includes(c.name)), w.lines.join('\n'));
  const events = await eventsOf(c.id, Date.parse(created.Created));
  t.deepEqual(events.filter((e) => ['start', 'kill', 'die', 'destroy'].includes(e)).filter((e, i, all) => e !== all[i - 1]), ['start', 'kill', 'die', 'destroy']);
});

test('a container that crashed while the caretaker was away is restarted by the next one, with the earlier count kept', async (t) => {
  const stack = stackFor(t);
  const stateFile = join(scratch, `${stack}.json`);
  const port = await freePort();
  const policy: RestartPolicy = { attempts: 5, intervalMs: 60_000, delayMs: 300, maxDelayMs: 300 };
  const first = caretakerFor(t, stack, stateFile);
  await first.care.ready;
  const c = await startContainer(docker, { ...webSpec(stack, policy), hostPorts: { 8080: port } });
  await httpGetWhenUp(`http://127.0.0.1:${port}/`);
  await killNine(c.id);
  await until('restarted once', async () => (first.latest(c.name)?.restarts === 1 ? true : undefined));
  await httpGetWhenUp(`http://127.0.0.1:${port}/`);

  // The caretaker goes away (it writes nothing on the way out: as after a kill -9), and the
  // container crashes meanwhile.
  await first.care.stop();
  await killNine(c.id);
  const dead = await until('exited', async () => ((await inspect(c.id)).State.Status === 'exited' ? inspect(c.id) : undefined));
  t.is(dead.State.ExitCode, 137);

  const second = caretakerFor(t, stack, stateFile);
  await second.care.ready;
  // Its second restart within the window: after the policy's delay.
  const waited = second.reports.find((r) => r.container === c.name);
  t.like(waited, { state: 'backoff', restarts: 1, lastExit: { code: 137, at: waited?.lastExit?.at } });
  const record = await until('restarted again', async () => (second.latest(c.name)?.restarts === 2 ? second.latest(c.name) : undefined));
  t.is(record.state, 'running');
  t.true(second.lines.some((l) => l === `caretaker: ${c.name} died (exit 137); restarting it in 300 ms (restart 2 of 5 within 1 min)`), second.lines.join('\n'));
  const after = await inspect(c.id);
  t.true(after.State.Running);
  t.is(after.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort, String(port));
  t.is((await httpGetWhenUp(`http://127.0.0.1:${port}/`)).body, 'up');
  const kept = JSON.parse(readFileSync(stateFile, 'utf8')) as { containers: Record<string, { restarts: number; restartTimes: number[] }> };
  t.is(kept.containers[c.id]?.restarts, 2);
  t.is(kept.containers[c.id]?.restartTimes.length, 2);
});

test('the agent puts each record under its lease, and deletes it when the container is removed', async (t) => {
  const stack = stackFor(t);
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const stateDir = join(mkdtempSync(join(scratch, 'agent-')), 'var/lib/quarry'); // made when missing
  const settings: AgentSettings = {
    server: `caretest-${process.pid}`, etcd: [etcd.endpoint], address: '192.0.2.1', ttlSeconds: 5,
    loadIntervalMs: 1000, dockerSocket: '/var/run/docker.sock', filesRoot: undefined,
    hostsFile: undefined, stateDir, tls: undefined, locknet: undefined, caretaker: true,
  };
  const lines: string[] = [];
  const agent = startAgent({ settings, log: (l) => lines.push(l), careStack: stack });
  t.teardown(() => agent.stop());
  await agent.registered;
  const c = await startContainer(docker, webSpec(stack));
  const key = keys.containerCare(stack, c.name);
  const read = async () => {
    const text = await etcd.client.get(key).string();
    return text === null ? undefined : (JSON.parse(text) as CareRecord);
  };
  await until('its running record in etcd', async () => ((await read())?.state === 'running' ? true : undefined));
  await killNine(c.id);
  const record = await until('the restart in etcd', async () => {
    const r = await read();
    return r?.restarts === 1 ? r : undefined;
  });
  t.like(record, { container: c.name, stack, unit: 'web', server: settings.server, state: 'running', restarts: 1, lastExit: { code: 137, at: record.lastExit?.at } });
  const [care, server] = await Promise.all([key, `/quarry/servers/${settings.server}`].map((k) => etcd.client.get(k).exec()));
  t.not(care!.kvs[0]!.lease, '0');
  t.is(care!.kvs[0]!.lease, server!.kvs[0]!.lease, 'under the agent\'s lease');
  t.true(lines.some((l) => l.startsWith(`caretaker: ${c.name} died (exit 137)`)), lines.join('\n'));
  t.true(JSON.parse(readFileSync(join(stateDir, `caretaker-${settings.server}.json`), 'utf8')).containers[c.id] !== undefined);

  await removeContainer(docker, c.id, 1);
  await until('the record deleted', async () => ((await etcd.client.get(key).string()) === null ? true : undefined));
  t.is(await etcd.client.get(key).string(), null);
});

/** A socket that passes through to the engine's, which the test can take away and bring back. */
function engineProxy(t: ExecutionContext, path: string) {
  let server: Server | undefined;
  const open = new Set<Socket>();
  const up = () => new Promise<void>((resolve) => {
    server = createServer((client) => {
      const engine = connect('/var/run/docker.sock');
      for (const s of [client, engine]) {
        open.add(s);
        s.on('close', () => open.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(engine).pipe(client);
    });
    server.listen(path, resolve);
  });
  const down = () => new Promise<void>((resolve) => {
    for (const s of open) s.destroy();
    if (!server) return resolve();
    server.close(() => resolve());
    server = undefined;
  });
  t.teardown(down);
  return { up, down };
}

test('the engine away: the caretaker says so once, follows again when it is back, and restarts what crashed meanwhile', async (t) => {
  const stack = stackFor(t);
  const socketPath = join(scratch, `${stack}.sock`);
  const proxy = engineProxy(t, socketPath);
  await proxy.up();
  const lines: string[] = [];
  const reports: CareRecord[] = [];
  const care = startCaretaker({
    docker: new Docker({ socketPath }), server: 'local', stack,
    report: (r) => reports.push(r), forget: () => undefined, log: (l) => lines.push(l),
  });
  t.teardown(() => care.stop());
  await care.ready;
  const port = await freePort();
  const c = await startContainer(docker, { ...webSpec(stack), hostPorts: { 8080: port } });
  await httpGetWhenUp(`http://127.0.0.1:${port}/`);
  await until('its running record', async () => (reports.some((r) => r.container === c.name) ? true : undefined));

  await proxy.down();
  await until('the stream ended', async () => (lines.some((l) => /docker's events stopped/.test(l)) ? true : undefined));
  await killNine(c.id);
  await until('exited', async () => ((await inspect(c.id)).State.Status === 'exited' ? true : undefined));
  // Away long enough for several retries.
  await until('a retry failed', async () => (lines.some((l) => /cannot follow docker's events/.test(l)) ? true : undefined));
  await new Promise((r) => setTimeout(r, 1500));
  await proxy.up();

  const record = await until('restarted', async () => reports.find((r) => r.container === c.name && r.restarts === 1));
  t.is(record.lastExit?.code, 137);
  t.is((await httpGetWhenUp(`http://127.0.0.1:${port}/`)).body, 'up');
  await until('following again', async () => (lines.includes('caretaker: following docker\'s events again') ? true : undefined));
  t.is(lines.filter((l) => /docker's events stopped/.test(l)).length, 1, lines.join('\n'));
  t.is(lines.filter((l) => /cannot follow docker's events/.test(l)).length, 1, `one line per trouble, not per retry:\n${lines.join('\n')}`);
});
