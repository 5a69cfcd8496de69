// DEPLOY's wait on the routers (launcher/router-sync.ts) against a real etcd and two real
// routers that report (`/quarry/routers/<id>`): it returns once both applied the route change
// and drained the old backend; a stale record is given up on at the cap and named; with no
// record at all it is the fixed delay.
import test from 'ava';
import { waitForRouters } from '../../launcher/index.js';
import { ROUTERS_PREFIX, startRouter, type Router } from '../../router/index.js';
import { startEtcd } from '../support/etcd.js';
import { get, startBackend, until, type Reply } from '../router/backends.js';

const key = (domain: string, name: string) => `/quarry/routes/${domain}/${name}`;

test('waitForRouters: both routers apply the change and drain the old backend; a stale record is named at the cap; no records: the fixed delay', async (t) => {
  const etcd = await startEtcd();
  const v1 = await startBackend('v1');
  const v2 = await startBackend('v2');
  const routers: Router[] = [];
  t.teardown(async () => {
    v1.release();
    await Promise.all(routers.map((r) => r.close()));
    await Promise.all([v1, v2].map((b) => b.close().catch(() => undefined)));
    await etcd.stop();
  });
  for (const id of ['a', 'b']) routers.push(await startRouter({ etcd: [etcd.endpoint], report: { id } }));
  const [a, b] = routers as [Router, Router];
  const routed = Number((await etcd.client.put(key('deploy.test', 'v1')).value(v1.url)).header.revision);
  await until('both routers route v1', () => a.domains().includes('deploy.test') && b.domains().includes('deploy.test'));
  await until('both records have it', async () => {
    const all = await etcd.client.getAll().prefix(ROUTERS_PREFIX).strings();
    return Object.values(all).length === 2 && Object.values(all).every((v) => (JSON.parse(v) as { revision: number | null }).revision! >= routed);
  });

  // A request held on v1 through router a when the route changes.
  const held: Promise<Reply> = get(a.port, 'deploy.test', '/hold');
  await until('a request held on v1', () => v1.held === 1);
  await etcd.client.put(key('deploy.test', 'v2')).value(v2.url);
  const revision = Number((await etcd.client.delete().key(key('deploy.test', 'v1'))).header.revision);

  const lines: string[] = [];
  let returned = false;
  const waiting = waitForRouters({ etcd: etcd.client, revision, oldUrls: [v1.url], syncMs: 60_000, drainMs: 60_000, info: (line) => lines.push(line) })
    .finally(() => { returned = true; });
  await until('router a lists v1 as draining', async () => {
    const text = await etcd.client.get(ROUTERS_PREFIX + 'a').string();
    return text !== null && (JSON.parse(text) as { draining: string[] }).draining.includes(v1.url);
  });
  t.true((a.state().revision ?? 0) >= revision && (b.state().revision ?? 0) >= revision, 'both applied the change');
  t.false(returned, 'the wait goes on while router a still has a request in flight on v1');
  v1.release();
  const outcome = await waiting;
  t.is((await held).body, 'v1 held');
  t.is(outcome.how, 'routers');
  t.deepEqual(outcome.lagged, []);
  t.deepEqual(outcome.drained, []);
  t.deepEqual(lines, []);
  t.deepEqual(a.state().draining, [], 'v1 drained in router a when the wait returned');
  for (const router of [a, b]) t.true((router.state().revision ?? 0) >= revision, 'each router applied the change when the wait returned');

  // A router whose record is stale (put by hand at an old revision): the wait gives up at its cap and names it.
  await etcd.client.put(ROUTERS_PREFIX + 'stale').value(JSON.stringify({ id: 'stale', revision: 1, draining: [], at: new Date().toISOString() }));
  const next = Number((await etcd.client.put(key('deploy.test', 'v2')).value(v2.url)).header.revision);
  const capped = await waitForRouters({ etcd: etcd.client, revision: next, oldUrls: [v1.url], syncMs: 300, drainMs: 0, info: (line) => lines.push(line) });
  t.is(capped.how, 'routers');
  t.deepEqual(capped.lagged, ['stale'], 'only the stale router lagged');
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^router stale had not applied the route change \(etcd revision \d+\)/);
  t.true((a.state().revision ?? 0) >= next && (b.state().revision ?? 0) >= next, 'the reporting routers did apply it');

  // No records at all (no router reports): the fixed drainMs delay.
  await Promise.all(routers.splice(0).map((r) => r.close()));
  await etcd.client.delete().key(ROUTERS_PREFIX + 'stale');
  t.deepEqual(await etcd.client.getAll().prefix(ROUTERS_PREFIX).keys(), [], 'closed routers took their records with them');
  const fixed = await waitForRouters({ etcd: etcd.client, revision: next + 1, oldUrls: [v1.url], syncMs: 60_000, drainMs: 200 });
  t.is(fixed.how, 'fixed');
  // A lower bound, not a speed: the fixed delay was waited (a timer never fires much before its time).
  t.true(fixed.waitedMs >= 190, `waited ${fixed.waitedMs} ms`);
});
