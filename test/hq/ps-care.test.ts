// `quarry ps`'s rows with what the caretakers wrote to etcd: restarts, the last exit, failed
// and back-off states; a container with no record has 0 restarts; an etcd that does not
// answer leaves restarts unknown (null) and ps still answers. Real etcd; the containers are
// given by a stand-in cluster (what docker says is not what is tested here).
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { createServer, type Socket } from 'node:net';
import type { ControlParts } from '../../hq/deploy/context.js';
import { psRows } from '../../hq/deploy/ps.js';
import { keys, type CareRecord, type PlacedContainer } from '../../launcher/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { freePort } from '../support/ports.js';

let etcd: TestEtcd;
test.before(async () => { etcd = await startEtcd(); });
test.after.always(async () => { await etcd?.stop(); });

// Only what ps reads of a container (the launcher's type has more, and changes).
const placed = (stack: string, unit: string, n: number, state: string) => ({
  id: `${stack}-${unit}-${n}`, name: `${stack}.${unit}.${n}`, stack, unit, kind: 'worker', n, state, hostPorts: {}, memoryMb: 128, server: 'local', release: 'v1',
}) as unknown as PlacedContainer;

function partsWith(client: Etcd3, containers: PlacedContainer[], stacks: string[]): ControlParts {
  const cluster = {
    addressing: 'alias',
    list: async (stack?: string) => containers.filter((c) => stack === undefined || c.stack === stack),
    reach: () => undefined,
  };
  const store = { check: () => undefined, stacks: () => stacks, latest: () => undefined };
  return { ctx: { etcd: client }, cluster, store } as unknown as ControlParts;
}

const care = (stack: string, unit: string, n: number, record: Partial<CareRecord>): CareRecord => ({
  container: `${stack}.${unit}.${n}`, stack, unit, server: 'local', state: 'running', restarts: 0, ...record,
});

test('restarts and the last exit from the care records; failed and back-off as states; no record is 0', async (t) => {
  const a = `psa${process.pid}`;
  const b = `psb${process.pid}`;
  const records = [
    care(a, 'worker', 1, { restarts: 2, lastExit: { code: 137, at: '2026-12-03T06:00:00.000Z', oom: true } }),
    care(a, 'worker', 2, { state: 'failed', restarts: 5, lastExit: { code: 3, at: '2026-12-03T06:01:00.000Z' }, reason: 'it died 6 times within 5 min' }),
    care(b, 'crunch', 1, { state: 'backoff', restarts: 1, lastExit: { code: 1, at: '2026-12-03T06:02:00.000Z' }, nextRestartAt: '2026-12-03T06:02:01.000Z' }),
  ];
  for (const r of records) await etcd.client.put(keys.containerCare(r.stack, r.container)).value(JSON.stringify(r));
  await etcd.client.put(keys.containerCare(b, `${b}.crunch.9`)).value('not json');
  const containers = [
    placed(a, 'worker', 1, 'running'), placed(a, 'worker', 2, 'exited'), placed(a, 'worker', 3, 'running'),
    placed(b, 'crunch', 1, 'exited'), placed(b, 'crunch', 2, 'running'),
  ];
  const rows = await psRows(partsWith(etcd.client, containers, [a, b]), undefined);
  t.deepEqual(rows.map((r) => [r.container, r.state, r.restarts, r.lastExit]), [
    [`${a}.worker.1`, 'running', 2, { code: 137, at: '2026-12-03T06:00:00.000Z' }],
    [`${a}.worker.2`, 'failed', 5, { code: 3, at: '2026-12-03T06:01:00.000Z' }],
    [`${a}.worker.3`, 'running', 0, undefined],
    [`${b}.crunch.1`, 'restarting', 1, { code: 1, at: '2026-12-03T06:02:00.000Z' }],
    [`${b}.crunch.2`, 'running', 0, undefined],
  ]);
  // One stack asked for: only its records matter.
  const one = await psRows(partsWith(etcd.client, containers, [a, b]), b);
  t.deepEqual(one.map((r) => [r.container, r.restarts]), [[`${b}.crunch.1`, 1], [`${b}.crunch.2`, 0]]);
});

test('an etcd that does not answer: ps answers anyway, restarts unknown (null), states as docker says', async (t) => {
  const away = new Etcd3({ hosts: `http://127.0.0.1:${await freePort()}` });
  t.teardown(() => away.close());
  const containers = [placed('gone', 'worker', 1, 'running'), placed('gone', 'worker', 2, 'exited')];
  const rows = await psRows(partsWith(away, containers, ['gone']), undefined, 300);
  t.deepEqual(rows.map((r) => [r.container, r.state, r.restarts, r.lastExit]), [
    ['gone.worker.1', 'running', null, undefined],
    ['gone.worker.2', 'exited', null, undefined],
  ]);
});

test('an etcd that takes connections and never answers: ps answers after its bound, restarts unknown', async (t) => {
  const held: Socket[] = [];
  const silent = createServer((socket) => { held.push(socket); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as { port: number }).port;
  const stuck = new Etcd3({ hosts: `http://127.0.0.1:${port}` });
  t.teardown(() => {
    stuck.close();
    for (const s of held) s.destroy();
    silent.close();
  });
  const rows = await psRows(partsWith(stuck, [placed('mute', 'worker', 1, 'running')], ['mute']), 'mute', 300);
  t.deepEqual(rows.map((r) => [r.container, r.restarts]), [['mute.worker.1', null]]);
  t.true(held.length > 0, 'the read did reach the silent server');
});
