import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { ROUTERS_PREFIX, startRouter, type RouterRecord } from '../../router/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { get, spawnRouterCli, startBackend, until, type Reply } from './backends.js';

const key = (domain: string, name: string) => `/quarry/routes/${domain}/${name}`;

async function recordOf(etcd: TestEtcd, id: string): Promise<RouterRecord | null> {
  const text = await etcd.client.get(ROUTERS_PREFIX + id).string();
  return text === null ? null : JSON.parse(text) as RouterRecord;
}

/**
 * A router with `report` keeps `/quarry/routers/<id>` in etcd: the revision of the routes it
 * applied, the retired backends still finishing requests, gone when it closes.
 */
test('a reporting router: its record follows the revision it applied and what it still drains, and goes on close', async (t) => {
  const etcd = await startEtcd();
  const v1 = await startBackend('v1');
  const v2 = await startBackend('v2');
  const router = await startRouter({ etcd: [etcd.endpoint], report: { id: 'r1' } });
  t.teardown(async () => {
    v1.release();
    await router.close();
    await Promise.all([v1, v2].map((b) => b.close().catch(() => undefined)));
    await etcd.stop();
  });

  await until('the record is there', async () => (await recordOf(etcd, 'r1'))?.revision != null);
  const first = (await recordOf(etcd, 'r1'))!;
  t.deepEqual(Object.keys(first).sort(), ['at', 'draining', 'id', 'revision'], 'nothing else (no secret) in the record');
  t.is(first.id, 'r1');
  t.deepEqual(first.draining, []);
  t.false(Number.isNaN(Date.parse(first.at)));
  const lease = (await etcd.client.get(ROUTERS_PREFIX + 'r1').exec()).kvs[0]!.lease;
  t.not(String(lease), '0', 'the record is under a lease');

  const routed = Number((await etcd.client.put(key('deploy.test', 'v1')).value(v1.url)).header.revision);
  await until('the record has the route change', async () => ((await recordOf(etcd, 'r1'))?.revision ?? 0) >= routed);
  t.is((await get(router.port, 'deploy.test')).body, 'v1');

  // A request held on v1 when its route goes: v1 is retired but still drains.
  const held: Promise<Reply> = get(router.port, 'deploy.test', '/hold');
  await until('a request held on v1', () => v1.held === 1);
  await etcd.client.put(key('deploy.test', 'v2')).value(v2.url);
  const swapped = Number((await etcd.client.delete().key(key('deploy.test', 'v1'))).header.revision);
  await until('the record has the swap', async () => ((await recordOf(etcd, 'r1'))?.revision ?? 0) >= swapped);
  const during = (await recordOf(etcd, 'r1'))!;
  t.deepEqual(during.draining, [v1.url], 'v1 listed as draining at the swap\'s revision');
  t.deepEqual(router.state(), { revision: during.revision, draining: [v1.url] });

  v1.release();
  t.is((await held).body, 'v1 held');
  await until('v1 drained: no longer listed', async () => (await recordOf(etcd, 'r1'))?.draining.length === 0);
  t.is((await recordOf(etcd, 'r1'))!.revision, during.revision);

  await router.close();
  t.is(await recordOf(etcd, 'r1'), null, 'the record is gone once the router closed');
});

interface Workers {
  revision: number | null;
  workers: Array<{ slot: number; pid: number; revision: number | null; draining: string[] }>;
}

/**
 * `quarry router` with two workers and `report`: the supervisor's record has the lowest
 * revision of its workers (one worker is stopped with SIGSTOP so that it cannot apply a change
 * the other applies) and the backends any worker still drains.
 */
test('quarry router with 2 workers and report: the record carries the lowest revision of the workers and what any drains', async (t) => {
  const etcd = await startEtcd();
  const v1 = await startBackend('v1');
  const v2 = await startBackend('v2');
  const dir = await mkdtemp(join(tmpdir(), 'quarry-router-report-'));
  let stopped: number | undefined;
  t.teardown(async () => {
    if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
    v1.release();
    await Promise.all([v1, v2].map((b) => b.close().catch(() => undefined)));
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, 'router.json'), JSON.stringify({
    port: 0, host: '127.0.0.1', etcd: [etcd.endpoint], admin: { port: 0 }, workers: 2, report: { id: 'edge-1' },
  }));
  // Generous: two workers start under tsx, on a machine other work shares.
  const router = await spawnRouterCli(t, pathToFileURL(join(dir, 'router.json')).href);
  const { child, exited, port, adminPort } = router;
  t.regex(router.out, /reporting as \/quarry\/routers\/edge-1/);
  const workers = async () => JSON.parse((await get(adminPort, 'localhost', '/workers')).body) as Workers;

  const routed = Number((await etcd.client.put(key('deploy.test', 'v1')).value(v1.url)).header.revision);
  await until(`both workers and the record have the route (stderr: ${router.err})`, async () =>
    (await workers()).workers.every((w) => (w.revision ?? 0) >= routed) && ((await recordOf(etcd, 'edge-1'))?.revision ?? 0) >= routed);

  // A request held on v1 (in whichever worker took it) when its route goes.
  const held: Promise<Reply> = get(port, 'deploy.test', '/hold');
  await until('a request held on v1', () => v1.held === 1);
  await etcd.client.put(key('deploy.test', 'v2')).value(v2.url);
  const swapped = Number((await etcd.client.delete().key(key('deploy.test', 'v1'))).header.revision);
  await until('the record has the swap, v1 draining', async () => {
    const record = await recordOf(etcd, 'edge-1');
    return (record?.revision ?? 0) >= swapped && record?.draining.includes(v1.url) === true;
  });
  t.deepEqual((await recordOf(etcd, 'edge-1'))!.draining, [v1.url]);
  t.deepEqual((await workers()).workers.flatMap((w) => w.draining), [v1.url], 'one worker drains v1');
  v1.release();
  t.is((await held).body, 'v1 held');
  await until('v1 drained in every worker: not in the record', async () => (await recordOf(etcd, 'edge-1'))?.draining.length === 0);

  // Worker 0 cannot apply the next change (stopped); worker 1 does; the record stays at worker 0's.
  const before = await workers();
  const atSwap = before.workers[0]!.revision!;
  stopped = before.workers[0]!.pid;
  process.kill(stopped, 'SIGSTOP');
  const next = Number((await etcd.client.put(key('other.test', 'v2')).value(v2.url)).header.revision);
  await until('worker 1 applied the change', async () => ((await workers()).workers[1]!.revision ?? 0) >= next);
  const seen = await workers();
  t.is(seen.workers[0]!.revision, atSwap, 'worker 0 is still where it was');
  t.is(seen.revision, atSwap, 'the supervisor\'s revision is the lowest');
  // Read the record a few times while worker 1 is ahead: it never says more than worker 0 applied.
  for (let i = 0; i < 10; i++) {
    t.is((await recordOf(etcd, 'edge-1'))!.revision, atSwap, 'the record has the lowest revision of the workers');
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  process.kill(stopped, 'SIGCONT');
  stopped = undefined;
  await until('once worker 0 goes on, the record has the change', async () => ((await recordOf(etcd, 'edge-1'))?.revision ?? 0) >= next);

  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.is(await recordOf(etcd, 'edge-1'), null, 'the record is gone once the router stopped');
});
