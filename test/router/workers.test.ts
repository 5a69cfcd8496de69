import { Agent } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { startEtcd } from '../support/etcd.js';
import { get, spawnRouterCli, startBackend, until, type Reply } from './backends.js';

interface Workers {
  revision: number | null;
  workers: Array<{ slot: number; pid: number; restarts: number; listening: boolean; revision: number | null; appliedAt: number | null; domains: number }>;
}

/**
 * `quarry router` with two workers against a real etcd, in one process tree started once:
 * a route change reaches both, a DEPLOY's swap under a stream of requests fails none, and a
 * worker killed with SIGKILL is started again while the other serves.
 */
test('quarry router with 2 workers: routes reach every worker, a swap fails no request, a killed worker is replaced', async (t) => {
  const etcd = await startEtcd();
  const v1 = await startBackend('v1');
  const v2 = await startBackend('v2');
  const other = await startBackend('other');
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const dir = await mkdtemp(join(tmpdir(), 'quarry-router-workers-'));
  t.teardown(async () => {
    agent.destroy();
    v1.release();
    v2.release();
    await Promise.all([v1, v2, other].map((b) => b.close().catch(() => undefined)));
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, 'router.json'), JSON.stringify({ port: 0, host: '127.0.0.1', etcd: [etcd.endpoint], admin: { port: 0 }, workers: 2 }));
  const router = await spawnRouterCli(t, pathToFileURL(join(dir, 'router.json')).href);
  const { child, exited, port, adminPort } = router;
  t.regex(router.out, /, 2 workers/);
  const admin = async <T>(path: string): Promise<T> => JSON.parse((await get(adminPort, 'localhost', path)).body) as T;
  const workers = () => admin<Workers>('/workers');
  await until(`both workers load the routes (stderr: ${router.err})`, () => /routes loaded: in all 2 workers/.test(router.err));

  // A route change: every worker applies it; how long that took is logged, not asserted.
  const key = (domain: string, name: string) => `/quarry/routes/${domain}/${name}`;
  const routeChange = async (change: () => Promise<{ header: { revision: string } }>, what: string, domains: number) => {
    const before = Date.now();
    const revision = Number((await change()).header.revision);
    await until(`${what} reaches every worker`, async () => (await workers()).workers.every((w) => (w.revision ?? 0) >= revision));
    const seen = await workers();
    t.deepEqual(seen.workers.map((w) => w.domains), [domains, domains], what);
    t.log(`${what}: in force in every worker ${Math.max(...seen.workers.map((w) => w.appliedAt! - before))} ms after the write began`);
    return revision;
  };
  await routeChange(() => etcd.client.put(key('deploy.test', 'v1')).value(v1.url).exec(), 'routing v1', 1);
  t.is((await get(port, 'deploy.test')).body, 'v1');

  // Eight keep-alive clients back to back: their connections are spread over both workers.
  const failures: string[] = [];
  let streaming = true;
  const client = async () => {
    while (streaming) {
      try {
        const reply = await get(port, 'deploy.test', '/', agent);
        if (reply.status !== 200) failures.push(`${reply.status} ${reply.body.slice(0, 80)}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  };
  const clients = Array.from({ length: 8 }, client);
  await until('v1 served some of the stream', () => v1.served >= 100);
  const held: Array<Promise<Reply>> = Array.from({ length: 4 }, () => get(port, 'deploy.test', '/hold'));
  await until('four requests held on v1', () => v1.held === 4);

  // DEPLOY: route v2, unroute v1; wait until every worker is at that revision (the
  // supervisor's /health?revision=V), then until v1 drained in every worker, then stop v1.
  await etcd.client.put(key('deploy.test', 'v2')).value(v2.url);
  const swapped = Number((await etcd.client.delete().key(key('deploy.test', 'v1'))).header.revision);
  await until('every worker is at the swap', async () => (await get(adminPort, 'localhost', `/health?revision=${swapped}`)).status === 200);
  const v1After = v1.served;
  const v2Before = v2.served;
  await until('v2 served 200 more', () => v2.served >= v2Before + 200);
  t.is(v1.served, v1After, 'no new request reached v1 once every worker was at the swap');
  v1.release();
  t.deepEqual((await Promise.all(held)).map((r) => r.body), ['v1 held', 'v1 held', 'v1 held', 'v1 held']);
  const backends = async () => (await admin<{ backends: Array<{ url: string }> }>('/stats')).backends.map((b) => b.url);
  await until('v1 drained in every worker', async () => !(await backends()).includes(v1.url));
  await v1.close();
  const v2Stopped = v2.served;
  await until('v2 served 200 more after v1 stopped', () => v2.served >= v2Stopped + 200);
  streaming = false;
  await Promise.all(clients);
  t.deepEqual(failures, []);
  const perWorker = (await admin<{ workers: Array<{ stats: { domains: Record<string, { requests: number }> } }> }>('/stats')).workers
    .map((w) => w.stats.domains['deploy.test']?.requests ?? 0);
  t.true(perWorker.every((n) => n > 0), `both workers served the stream: ${perWorker.join(', ')}`);

  // SIGKILL one worker: the other serves every request meanwhile, and the supervisor starts another.
  agent.destroy();
  const before = await workers();
  const victim = before.workers[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await until('the supervisor saw it die', () => /worker 0 \(pid \d+\) died \(SIGKILL\)/.test(router.err));
  const during = await Promise.all(Array.from({ length: 20 }, () => get(port, 'deploy.test')));
  t.deepEqual(during.filter((r) => r.status !== 200 || r.body !== 'v2'), []);
  await until('worker 0 serves again', async () => {
    const w = (await workers()).workers[0]!;
    return w.listening && w.pid !== victim.pid && w.restarts === 1;
  });
  t.regex(router.err, /worker 0 \(pid \d+\) is serving again/);

  // A route change reaches the new worker too, and requests over fresh connections (spread
  // over both workers) all find it.
  await routeChange(() => etcd.client.put(key('other.test', 'o1')).value(other.url).exec(), 'routing other.test', 2);
  const replies = await Promise.all(Array.from({ length: 20 }, () => get(port, 'other.test')));
  t.deepEqual(replies.filter((r) => r.body !== 'other'), []);

  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.regex(router.err, /SIGTERM: finishing requests in flight/);
});
