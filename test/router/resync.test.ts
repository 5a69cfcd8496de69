import test from 'ava';
import { startRouter } from '../../router/index.js';
import { startEtcd } from '../support/etcd.js';
import { TcpCut, get, startBackend, until } from './backends.js';

/**
 * The router is cut off from etcd while routes change and etcd compacts away the history
 * its watch would have replayed. When the link comes back, etcd cancels the old watch; the
 * router must read the routes whole again (resync) and serve the new state.
 */
test('changes made while cut off from etcd, history compacted, arrive after reconnecting', async (t) => {
  const etcd = await startEtcd();
  const relay = new TcpCut(Number(new URL(etcd.endpoint).port));
  const logs: string[] = [];
  const router = await startRouter({ etcd: [await relay.listen()], log: (line) => logs.push(line) });
  const [before, after] = [await startBackend('before'), await startBackend('after')];
  t.teardown(async () => {
    await router.close();
    await relay.close();
    await Promise.all([before.close(), after.close()]);
    await etcd.stop();
  });

  await etcd.client.put('/quarry/routes/old.test/w1').value(before.url);
  await etcd.client.put('/quarry/routes/moved.test/w1').value(before.url);
  await until('routes read', () => router.domains().length === 2);

  relay.cut();
  await until('the router sees the watch cut', () => !router.stats().routes.connected);
  await etcd.client.delete().key('/quarry/routes/old.test/w1');
  await etcd.client.put('/quarry/routes/moved.test/w1').value(after.url);
  const put = await etcd.client.put('/quarry/routes/new.test/w1').value(after.url).exec();
  await etcd.client.kv.compact({ revision: put.header.revision, physical: true });
  // Routes still answer from the last state while etcd is out of reach.
  t.is((await get(router.port, 'moved.test')).body, 'before');
  relay.restore();

  await until('the router resynced', () => router.domains().join() === 'moved.test,new.test' &&
    router.stats().routes.connected, 60_000);
  t.is((await get(router.port, 'old.test')).status, 404);
  t.is((await get(router.port, 'moved.test')).body, 'after');
  t.is((await get(router.port, 'new.test')).body, 'after');
  t.is(router.stats().routes.revision, Number(put.header.revision));

  // And the new watch is live.
  await etcd.client.put('/quarry/routes/later.test/w1').value(after.url);
  await until('a later change arrives', () => router.domains().includes('later.test'));
  t.true(logs.some((line) => /disconnected|cancelled/.test(line)), logs.join('\n'));
});
