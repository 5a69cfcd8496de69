import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { startOwnEtcd, type OwnEtcd } from '../../hq/etcd/etcd-server.js';
import { HomeLayout } from '../../home/index.js';
import { loadKey, serverKey, startAgent, type AgentSettings, type LoadRecord, type ServerRecord } from '../../launcher/agent/index.js';
import { repoRoot } from '../support/cli.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { freePort } from '../support/ports.js';

// One etcd for the file (its own ports and data); the restart test makes its own.
let etcd: TestEtcd;
const scratch = mkdtempSync(join(tmpdir(), 'quarry-agent-etcd-'));
test.before(async () => { etcd = await startEtcd(); });
test.after.always(async () => {
  await etcd?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

let serial = 0;
const serverId = () => `agent-test-${process.pid}-${++serial}`;

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting (${timeoutMs} ms): ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function read<T>(client: Etcd3, key: string): Promise<T | undefined> {
  const text = await client.get(key).string();
  return text === null ? undefined : (JSON.parse(text) as T);
}

interface AgentProcess {
  child: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** The agent as the image runs it: `node launcher/agent/main.ts agent --config URL` (through tsx). */
function agentProcess(t: { teardown(fn: () => void): void }, settings: Record<string, unknown>): AgentProcess {
  const file = join(scratch, `agent-${++serial}.json`);
  writeFileSync(file, JSON.stringify(settings));
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'launcher/agent/main.ts'), 'agent', '--config', `file://${file}`], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const lines: string[] = [];
  let waiting: Array<() => void> = [];
  const onText = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    for (const wake of waiting) wake();
  };
  child.stdout!.on('data', onText);
  child.stderr!.on('data', onText);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const wake of waiting) wake();
    });
  });
  return {
    child, lines, exited,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; the agent said:\n${lines.join('\n')}`)), timeoutMs);
        const check = () => {
          const line = lines.find((l) => pattern.test(l));
          if (line !== undefined || child.exitCode !== null) {
            clearTimeout(timer);
            waiting = waiting.filter((w) => w !== check);
            if (line !== undefined) resolve(line);
            else reject(new Error(`the agent exited (${child.exitCode}) without ${pattern}:\n${lines.join('\n')}`));
          }
        };
        waiting.push(check);
        check();
      });
    },
  };
}

test('the record and the load appear with sane numbers; the load is refreshed; SIGTERM removes the record at once and exits 0', async (t) => {
  const id = serverId();
  const agent = agentProcess(t, { server: id, etcd: [etcd.endpoint], address: '198.51.100.7', loadIntervalMs: 300 });
  await agent.waitFor(/registered \/quarry\/servers\//);
  const record = await until('the record', () => read<ServerRecord>(etcd.client, serverKey(id)));
  t.is(record.id, id);
  t.is(record.address, '198.51.100.7');
  t.is(record.agent.pid, agent.child.pid!);
  t.regex(record.agent.version, /^\d+\.\d+\.\d+/);
  t.true(Math.abs(Date.parse(record.agent.startedAt) - Date.now()) < 60_000);
  t.true(record.docker.version === null || /^\d+\./.test(record.docker.version), String(record.docker.version));

  const load = await until('the load', () => read<LoadRecord>(etcd.client, loadKey(id)));
  t.true(Number.isInteger(load.cpus) && load.cpus >= 1);
  t.true(load.load1 >= 0 && load.load1 < 1000);
  t.true(load.memory.totalMb > 0 && load.memory.availableMb <= load.memory.totalMb);
  t.true(load.containers === null || (Number.isInteger(load.containers) && load.containers >= 0));
  const later = await until('a newer load', async () => {
    const next = await read<LoadRecord>(etcd.client, loadKey(id));
    return next && next.at > load.at ? next : undefined;
  });
  t.true(Date.parse(later.at) > Date.parse(load.at));

  // Both keys are under one lease, the agent's.
  const [a, b] = await Promise.all([serverKey(id), loadKey(id)].map((k) => etcd.client.get(k).exec()));
  t.not(a!.kvs[0]!.lease, '0');
  t.is(a!.kvs[0]!.lease, b!.kvs[0]!.lease);

  agent.child.kill('SIGTERM');
  t.deepEqual(await agent.exited, { code: 0, signal: null });
  t.is(await etcd.client.get(serverKey(id)).string(), null, 'the record went with the revoked lease');
  t.is(await etcd.client.get(loadKey(id)).string(), null);
  t.true(agent.lines.some((l) => /SIGTERM: stopping/.test(l)));
  t.true(agent.lines.some((l) => /stopped: lease revoked/.test(l)));
  t.false(agent.lines.some((l) => /internal error/.test(l)), agent.lines.join('\n'));
});

test('after SIGKILL the record stays until the lease expires (ttl 2 s), then it is gone', async (t) => {
  const id = serverId();
  const agent = agentProcess(t, { server: id, etcd: [etcd.endpoint], ttlSeconds: 2, loadIntervalMs: 500, caretaker: false });
  await agent.waitFor(/registered \/quarry\/servers\//);
  agent.child.kill('SIGKILL');
  const killedAt = Date.now();
  await agent.exited;
  t.not(await etcd.client.get(serverKey(id)).string(), null, 'nobody revoked the lease: the record is still there');
  await until('the record to expire', async () => ((await etcd.client.get(serverKey(id)).string()) === null ? true : undefined), 15_000);
  const gone = Date.now() - killedAt;
  t.is(await etcd.client.get(loadKey(id)).string(), null);
  t.log(`record gone ${gone} ms after SIGKILL (ttl 2 s)`);
});

test('etcd away longer than the lease, then back (same data, then wiped): the agent registers again each time', async (t) => {
  const home = new HomeLayout(join(scratch, 'restart-home'));
  const port = await freePort();
  let own: OwnEtcd | undefined = await startOwnEtcd({ home, port });
  t.teardown(async () => { await own?.stop(); });
  const endpoint = own.endpoint;
  const id = serverId();
  const agent = agentProcess(t, { server: id, etcd: [endpoint], ttlSeconds: 2, loadIntervalMs: 300, caretaker: false });
  await agent.waitFor(/registered \/quarry\/servers\//);

  const leaseOf = async (client: Etcd3) => {
    const response = await client.get(serverKey(id)).exec();
    return response.kvs[0]?.lease;
  };
  let client = new Etcd3({ hosts: endpoint });
  const first = await until('the record', () => leaseOf(client));
  client.close();

  // Away for 6 s (three TTLs): the agent's lease is lost; it keeps trying.
  await own.stop();
  own = undefined;
  await agent.waitFor(/cannot (register|write)|lease .* lost/, 15_000);
  await new Promise((r) => setTimeout(r, 6000));
  own = await startOwnEtcd({ home, port });
  client = new Etcd3({ hosts: endpoint });
  t.teardown(() => client.close());
  await agent.waitFor(/registered again/, 30_000);
  const second = await until('the record on a new lease', async () => {
    const lease = await leaseOf(client);
    return lease !== undefined && lease !== first ? lease : undefined;
  });
  // The old lease (which etcd kept across its restart) expires; the record, on the new one, stays.
  await new Promise((r) => setTimeout(r, 3500));
  t.is(await leaseOf(client), second);
  t.truthy(await read<LoadRecord>(client, loadKey(id)));

  // A new, empty etcd on the same address: the lease is unknown to it, the agent puts both again.
  const registrations = agent.lines.filter((l) => /registered again/.test(l)).length;
  client.close();
  await own.stop();
  rmSync(home.etcdDir, { recursive: true, force: true });
  own = await startOwnEtcd({ home, port });
  client = new Etcd3({ hosts: endpoint });
  const record = await until('the record in the new etcd', () => read<ServerRecord>(client, serverKey(id)), 30_000);
  t.is(record.id, id);
  t.truthy(await until('the load in the new etcd', () => read<LoadRecord>(client, loadKey(id))));
  t.true(agent.lines.filter((l) => /registered again/.test(l)).length > registrations);

  agent.child.kill('SIGTERM');
  t.is((await agent.exited).code, 0);
  t.is(await client.get(serverKey(id)).string(), null);
  t.false(agent.lines.some((l) => /internal error/.test(l)), agent.lines.join('\n'));
  t.log(agent.lines.join('\n'));
});

test('stopped before etcd ever answered: no record, and it stops at once', async (t) => {
  const settings: AgentSettings = {
    server: serverId(), etcd: [`http://127.0.0.1:${await freePort()}`], address: '192.0.2.1', ttlSeconds: 2, caretaker: false,
    loadIntervalMs: 200, dockerSocket: '/var/run/docker.sock', filesRoot: undefined,
    hostsFile: undefined, stateDir: scratch, tls: undefined, locknet: undefined,
  };
  const lines: string[] = [];
  const agent = startAgent({ settings, log: (l) => lines.push(l) });
  await until('a complaint about etcd', async () => (lines.some((l) => /cannot register at etcd/.test(l)) ? true : undefined));
  const started = Date.now();
  await agent.stop();
  t.true(Date.now() - started < 5000);
  await t.throwsAsync(agent.registered, { message: /stopped before it registered/ });
  t.is(agent.registrations(), 0);
  t.is(lines.filter((l) => /cannot register/.test(l)).length, 1, 'one line per event, not one per retry');
});

test('files: /quarry/config/files/<path> is kept in sync under filesRoot, also across an agent restart', async (t) => {
  const root = join(scratch, 'files');
  mkdirSync(root, { recursive: true });
  const prefix = '/quarry/config/files/';
  await etcd.client.put(`${prefix}etc/hosts`).value('127.0.0.1 localhost\n');
  await etcd.client.put(`${prefix}../escape`).value('never written');
  const settings: AgentSettings = {
    server: serverId(), etcd: [etcd.endpoint], address: '192.0.2.1', ttlSeconds: 5, caretaker: false,
    loadIntervalMs: 1000, dockerSocket: '/var/run/docker.sock', filesRoot: root,
    hostsFile: undefined, stateDir: scratch, tls: undefined, locknet: undefined,
  };
  const lines: string[] = [];
  const hosts = join(root, 'etc/hosts');
  const text = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  let agent = startAgent({ settings, log: (l) => lines.push(l) });
  t.teardown(() => agent.stop());
  await agent.registered;
  await until('etc/hosts', async () => (text(hosts) === '127.0.0.1 localhost\n' ? true : undefined));
  t.false(existsSync(join(scratch, 'escape')));
  t.true(lines.some((l) => /ignoring \/quarry\/config\/files\/\.\.\/escape/.test(l)));

  await etcd.client.put(`${prefix}etc/hosts`).value('127.0.0.1 localhost\n10.0.0.2 s2\n');
  await until('etc/hosts changed', async () => (text(hosts)?.includes('s2') ? true : undefined));
  await etcd.client.put(`${prefix}a/b/c.conf`).value('deep');
  await until('a/b/c.conf', async () => (text(join(root, 'a/b/c.conf')) === 'deep' ? true : undefined));
  await etcd.client.delete().key(`${prefix}a/b/c.conf`);
  await until('a/b/c.conf removed', async () => (existsSync(join(root, 'a/b/c.conf')) ? undefined : true));

  // Changed and deleted while the agent was away: the next start catches up.
  await agent.stop();
  writeFileSync(join(root, 'mine.txt'), 'not the agent\'s: left alone');
  await etcd.client.put(`${prefix}gone-while-away`).value('x');
  agent = startAgent({ settings, log: (l) => lines.push(l) });
  await until('gone-while-away', async () => (text(join(root, 'gone-while-away')) === 'x' ? true : undefined));
  await agent.stop();
  await etcd.client.delete().key(`${prefix}gone-while-away`);
  await etcd.client.put(`${prefix}etc/hosts`).value('127.0.0.1 localhost\n');
  agent = startAgent({ settings, log: (l) => lines.push(l) });
  // The manifest is written after the files it lists: wait for both.
  const listed = (): unknown => {
    try {
      return JSON.parse(text(join(root, '.quarry-files.json')) ?? 'null');
    } catch {
      return null; // being written
    }
  };
  const caughtUp = () => !existsSync(join(root, 'gone-while-away')) && text(hosts) === '127.0.0.1 localhost\n' &&
    JSON.stringify(listed()) === JSON.stringify(['etc/hosts']);
  await until('caught up', async () => (caughtUp() ? true : undefined));
  t.is(text(join(root, 'mine.txt')), 'not the agent\'s: left alone');
  t.deepEqual(JSON.parse(readFileSync(join(root, '.quarry-files.json'), 'utf8')), ['etc/hosts']);
  await agent.stop();
  await etcd.client.delete().prefix(prefix);
});
