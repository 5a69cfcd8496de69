// `quarry ps`'s RATE: each element container's logs handled per second from its instance's
// ElementMetrics record in etcd (by element and replica); null with no record or a stale one;
// nodes have none. Real etcd; the containers are given by a stand-in cluster, as in
// ps-care.test.ts.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import type { ControlParts } from '../../hq/deploy/context.js';
import { psRows } from '../../hq/deploy/ps.js';
import { keys, type ElementMetrics, type PlacedContainer } from '../../launcher/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';

let etcd: TestEtcd;
test.before(async () => { etcd = await startEtcd(); });
test.after.always(async () => { await etcd?.stop(); });

const placed = (stack: string, unit: string, kind: string, n: number) => ({
  id: `${stack}-${unit}-${n}`, name: `${stack}.${unit}.${n}`, stack, unit, kind, n, state: 'running', hostPorts: {}, memoryMb: 128, server: 'local', release: 'v1',
}) as unknown as PlacedContainer;

function partsWith(client: Etcd3, containers: PlacedContainer[], stacks: string[]): ControlParts {
  const cluster = { addressing: 'alias', list: async () => containers, reach: () => undefined };
  const store = { check: () => undefined, stacks: () => stacks, latest: () => undefined };
  return { ctx: { etcd: client }, cluster, store } as unknown as ControlParts;
}

const record = (stack: string, element: string, replica: number, rate: number, at: number): ElementMetrics => ({
  stack, element, replica, server: 'local', incarnation: 'x', at: new Date(at).toISOString(), intervalMs: 1000,
  processed: 0, busySeconds: 0, busy: 0.5, rate, ports: {},
});

test('an element\'s rate from its instance\'s metrics; none or stale is null; nodes have no rate', async (t) => {
  const s = `psrate${process.pid}`;
  const now = Date.now();
  for (const m of [record(s, 'parse', 1, 42.5, now), record(s, 'parse', 2, 7, now - 60_000)]) {
    await etcd.client.put(keys.elementMetrics(s, m.element, m.replica)).value(JSON.stringify(m));
  }
  await etcd.client.put(keys.elementMetrics(s, 'parse', 9)).value('not json');
  const containers = [placed(s, 'parse', 'element', 1), placed(s, 'parse', 'element', 2), placed(s, 'parse', 'element', 3), placed(s, 'web', 'web', 1)];
  const rows = await psRows(partsWith(etcd.client, containers, [s]), s);
  t.deepEqual(rows.map((r) => [r.container, r.rate]), [
    [`${s}.parse.1`, 42.5], [`${s}.parse.2`, null], [`${s}.parse.3`, null], [`${s}.web.1`, undefined],
  ]);
  t.false('rate' in rows[3]!);
});
