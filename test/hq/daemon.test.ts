import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HomeInUseError, ListenError } from '../../hq/errors.js';
import { HomeLayout } from '../../home/index.js';
import { hqConfigOf } from '../../hq/config.js';
import { startDaemon, type HqConfig, type MakeControl } from '../../hq/index.js';
import { httpGet } from '../support/http.js';
import { until } from '../support/until.js';
import { freePort } from '../support/ports.js';
import { MemoryControl } from './api-memory-control.js';

function config(t: { teardown(fn: () => void): void }, more: Partial<HqConfig> = {}): HqConfig {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-daemon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { ...hqConfigOf({ home: join(dir, 'home'), host: '127.0.0.1', sshPort: 0, apiHost: '127.0.0.1', apiPort: 0, routerPort: 0, etcd: undefined, etcdPort: 0, grid: undefined, locknet: false }), ...more };
}

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The test's own control: the API over memory, and a record of what the daemon handed it. */
function memoryControl(seen: { ctx?: Parameters<MakeControl>[0]; closed: boolean }): MakeControl {
  return async (ctx) => {
    seen.ctx = ctx;
    const control = new MemoryControl();
    return Object.assign(control, {
      onRelease: async () => undefined,
      close: async () => { seen.closed = true; },
    });
  };
}

test('starts everything on the given ports, writes hq.json, serves the API with the token, and stops it all', async (t) => {
  const c = config(t);
  const home = new HomeLayout(c.home);
  const logged: string[] = [];
  const seen: { ctx?: Parameters<MakeControl>[0]; closed: boolean } = { closed: false };
  const daemon = await startDaemon(c, memoryControl(seen), { log: (l) => logged.push(l) });
  let closed = false;
  t.teardown(async () => { if (!closed) await daemon.close(); });

  const info = JSON.parse(readFileSync(home.hqInfo, 'utf8')) as typeof daemon.info;
  t.deepEqual(info, daemon.info);
  t.is(info.pid, process.pid);
  t.is(info.api, `http://127.0.0.1:${info.apiPort}`);
  t.is(info.push, `ssh://quarry@127.0.0.1:${info.sshPort}/`);
  t.is(seen.ctx?.config.routerPort, info.routerPort, 'the control is told the port the router got');

  const token = readFileSync(home.token, 'utf8').trim();
  t.false(logged.join('\n').includes(token), 'the token is never logged');
  t.true(logged.some((l) => l.includes(`API token in ${home.token}`)));
  t.true(logged.some((l) => l.includes(`git remote add quarry ssh://quarry@127.0.0.1:${info.sshPort}/STACK`)));
  t.true(logged.some((l) => l.includes('quarry keys add')));

  t.is((await httpGet(`${info.api}/v1/stacks`)).status, 401);
  const stacks = await httpGet(`${info.api}/v1/stacks`, 2000, { authorization: `Bearer ${token}` });
  t.deepEqual(JSON.parse(stacks.body), { stacks: ['demo', 'empty'] });
  // The router answers (no routes yet: an unknown domain), and etcd is HQ's own.
  t.is((await httpGet(`http://127.0.0.1:${info.routerPort}/`, 2000, { host: 'nothing.example' })).status, 404);
  t.is(daemon.etcd.length, 1);
  const etcdPid = (JSON.parse(readFileSync(home.etcdPidFile, 'utf8')) as { pid: number }).pid;
  t.true(running(etcdPid));
  t.is(await seen.ctx!.etcd.get('/quarry/nothing').string(), null);
  // The embedded router keeps its record (`/quarry/routers/hq`) for DEPLOY to wait on.
  const record = async () => JSON.parse((await seen.ctx!.etcd.get('/quarry/routers/hq').string()) ?? 'null') as { id: string; revision: number | null } | null;
  await until('the embedded router reports its routes', async () => ((await record())?.revision != null ? true : undefined));
  t.is((await record())!.id, 'hq');

  // A second HQ on this home is refused, and leaves the first one's things alone.
  const second = await t.throwsAsync(startDaemon(config(t, { home: c.home }), memoryControl({ closed: false }), { log: () => undefined }), { instanceOf: HomeInUseError });
  t.regex(second?.message ?? '', new RegExp(`another HQ \\(pid ${process.pid}\\) is running with home ${c.home}`));
  t.true(existsSync(home.hqInfo));

  closed = true;
  await daemon.close();
  t.true(seen.closed);
  t.false(running(etcdPid));
  t.false(existsSync(home.hqInfo));
  t.false(existsSync(home.lockFile));
  t.false(existsSync(home.etcdPidFile));
});

test('a port in use stops the start naming the setting, and leaves nothing running', async (t) => {
  const taken = createServer();
  const port = await freePort();
  await new Promise<void>((r) => taken.listen(port, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const c = config(t, { apiPort: port });
  const home = new HomeLayout(c.home);
  const seen = { closed: false };
  const err = await t.throwsAsync(startDaemon(c, memoryControl(seen), { log: () => undefined }), { instanceOf: ListenError });
  t.is(err?.message, `HQ cannot listen on 127.0.0.1:${port} (apiPort): in use; set "apiPort" in HQ's config (quarry hq --config URL)`);
  t.true(seen.closed, 'what was started before is stopped');
  t.false(existsSync(home.etcdPidFile), 'no etcd is left running');
  t.false(existsSync(home.lockFile));
  t.false(existsSync(home.hqInfo));
});

test('a configured etcd is used instead of an own one, and one that does not answer is named', async (t) => {
  const port = await freePort();
  const c = config(t, { etcd: [`http://127.0.0.1:${port}`] });
  const err = await t.throwsAsync(startDaemon(c, memoryControl({ closed: false }), { log: () => undefined, etcdWaitMs: 1000 }));
  t.regex(err?.message ?? '', new RegExp(`^HQ cannot reach etcd at http://127\\.0\\.0\\.1:${port}: .*; check "etcd" in HQ's config$`));
  t.false(existsSync(new HomeLayout(c.home).etcdDir), 'no own etcd was made');
});
