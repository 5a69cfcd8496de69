import { Agent } from 'node:http';
import test from 'ava';
import { startRouter } from '../../router/index.js';
import { startEtcd } from '../support/etcd.js';
import { get, startBackend, until, type Reply } from './backends.js';

/**
 * A DEPLOY as HQ runs it, under a steady stream of requests: the new release's backend is
 * routed, the old one's key deleted, the router drains it (requests in flight to it finish),
 * and only then is the old backend stopped. Not one request may fail.
 */
test('a backend removed during a stream of requests: in-flight requests finish, none fails', async (t) => {
  const etcd = await startEtcd();
  const oldRelease = await startBackend('v1');
  const newRelease = await startBackend('v2');
  const router = await startRouter({ etcd: [etcd.endpoint], admin: { port: 0 } });
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(async () => {
    agent.destroy();
    await router.close();
    await newRelease.close();
    await oldRelease.close().catch(() => undefined);
    await etcd.stop();
  });
  const key = (name: string) => `/quarry/routes/deploy.test/${name}`;
  await etcd.client.put(key('v1')).value(oldRelease.url);
  await until('v1 routed', () => router.domains().includes('deploy.test'));

  // Eight clients send requests back to back until told to stop.
  const failures: string[] = [];
  const bodies = new Map<string, number>();
  let sent = 0;
  let streaming = true;
  const client = async () => {
    while (streaming) {
      sent++;
      try {
        const reply = await get(router.port, 'deploy.test', '/', agent);
        if (reply.status !== 200) failures.push(`${reply.status} ${reply.body.slice(0, 80)}`);
        bodies.set(reply.body, (bodies.get(reply.body) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const clients = Array.from({ length: 8 }, client);

  // Slow requests in flight on v1 when its route goes.
  await until('v1 served some of the stream', () => oldRelease.served >= 50);
  const held: Array<Promise<Reply>> = Array.from({ length: 3 }, () => get(router.port, 'deploy.test', '/hold'));
  await until('three requests held on v1', () => oldRelease.held === 3);

  // DEPLOY: route v2, unroute v1.
  await etcd.client.put(key('v2')).value(newRelease.url);
  await etcd.client.delete().key(key('v1'));
  const backendsSeen = async () => JSON.parse((await get(router.adminPort!, 'localhost', '/stats')).body).backends as
    Array<{ url: string; inFlight: number; retired: boolean }>;
  await until('the router retired v1', async () => (await backendsSeen()).some((b) => b.url === oldRelease.url && b.retired));
  const v1Stats = (await backendsSeen()).find((b) => b.url === oldRelease.url)!;
  t.is(v1Stats.inFlight, 3, 'the held requests are still in flight on the retired backend');

  // New requests go to v2 only while v1 still finishes its three.
  const v2Before = newRelease.served;
  const v1Before = oldRelease.served;
  await until('v2 served 200 more', () => newRelease.served >= v2Before + 200);
  t.is(oldRelease.served, v1Before, 'no request reached v1 after its route went');

  // The held requests finish; the router lets go of v1; then v1 stops (its container would).
  oldRelease.release();
  const heldReplies = await Promise.all(held);
  t.deepEqual(heldReplies.map((r) => [r.status, r.body]), [[200, 'v1 held'], [200, 'v1 held'], [200, 'v1 held']]);
  await until('v1 drained', async () => !(await backendsSeen()).some((b) => b.url === oldRelease.url));
  await oldRelease.close();

  const v2AfterStop = newRelease.served;
  await until('v2 served 200 more after v1 stopped', () => newRelease.served >= v2AfterStop + 200);
  streaming = false;
  await Promise.all(clients);

  t.deepEqual(failures, []);
  t.true(sent > 450);
  t.true((bodies.get('v1') ?? 0) >= 50);
  t.true((bodies.get('v2') ?? 0) >= 400);
  t.is(router.stats().domains['deploy.test']?.errors, 0);
});
