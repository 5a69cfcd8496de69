import test from 'ava';
import { ManualPeerSource, element, type ElementRuntime, type Log } from '../../runtime/index.js';
import { fnv1a, memberForKey } from '../../runtime/spread.js';
import { ipc, members, range, sinkWiring, sourceWiring, target, until, run } from './wiring.js';

/** n sink members; each records what it got. */
async function shard(t: { teardown(fn: () => unknown): void }, n: number) {
  const endpoints = range(n).map(() => ipc());
  const got: Log[][] = endpoints.map(() => []);
  const runtimes = await Promise.all(
    endpoints.map((ep, m) => run(t, element({ onPush: (_p, logs) => void got[m]!.push(...logs) }), sinkWiring(ep, {}, m, n))),
  );
  return { endpoints, got, runtimes, stop: () => Promise.all(runtimes.map((r) => r.stop())) };
}

test('round-robin spreads batches over every member, each log once', async (t) => {
  const s = await shard(t, 3);
  const source = await run(t, element({ *generate() { for (const i of range(3000)) yield { i }; } }), sourceWiring([target(s.endpoints)], { batch: 10 }));
  await source.sourceDone;
  for (const [m, logs] of s.got.entries()) t.true(logs.length > 0, `member ${m} got logs`);
  const all = s.got.flat().map((l) => l.i as number).sort((a, b) => a - b);
  t.deepEqual(all, range(3000));
  await Promise.all([source.stop(), s.stop()]);
});

test('hash:<field> sends each value to one member, the same from every producer', async (t) => {
  const s = await shard(t, 3);
  const logs = range(2000).map((i) => ({ i, key: `k${i % 50}` }));
  const wiring = sourceWiring([target(s.endpoints, 'hash:key')], { batch: 16 });
  const a = await run(t, element({ *generate() { yield logs.slice(0, 1000); } }), wiring);
  const b = await run(t, element({ *generate() { yield logs.slice(1000); } }), wiring);
  await Promise.all([a.sourceDone, b.sourceDone]);
  const owner = new Map<string, Set<number>>();
  for (const [m, got] of s.got.entries()) {
    for (const log of got) {
      const key = log.key as string;
      if (!owner.has(key)) owner.set(key, new Set());
      owner.get(key)!.add(m);
    }
  }
  t.is(owner.size, 50);
  for (const [key, ms] of owner) t.is(ms.size, 1, `${key} went to members ${[...ms]}`);
  t.true(s.got.every((g) => g.length > 0), 'every member owns some keys');
  t.is(s.got.flat().length, 2000);
  await Promise.all([a.stop(), b.stop(), s.stop()]);
});

test('a removed member\'s unacknowledged logs and its keys move to the other members', async (t) => {
  const endpoints = range(3).map(() => ipc());
  const got: Log[][] = [[], [], []];
  // Member 2 takes its first batch and never finishes it: it acknowledges nothing.
  const runtimes = await Promise.all(
    endpoints.map((ep, m) =>
      run(t, 
        element({ async onPush(_p, logs) { if (m === 2) await new Promise(() => {}); got[m]!.push(...logs); } }),
        sinkWiring(ep, {}, m, 3),
      ),
    ),
  );
  const peers = new ManualPeerSource();
  let release!: () => void;
  const more = new Promise<void>((r) => (release = r));
  const source = await run(t, 
    element({
      async *generate() {
        yield range(300).map((i) => ({ i, key: `k${i % 30}` }));
        await more;
        yield range(300).map((i) => ({ i: 300 + i, key: `k${i % 30}` }));
      },
    }),
    sourceWiring([target(endpoints, 'hash:key')], { batch: 5 }),
    { peers },
  );
  const hashes = ['0', '1', '2'].map(fnv1a);
  const forTwo = range(300).filter((i) => memberForKey(`k${i % 30}`, hashes) === 2).length;
  t.true(forTwo > 0);
  await until(() => got[0]!.length + got[1]!.length === 300 - forTwo, 'members 0 and 1 to have theirs');
  const before = new Map(got.flatMap((g, m) => g.map((l) => [l.key as string, m] as const)));
  // The source still holds what member 2 has not acknowledged, and only that.
  await until(() => source.stats().ports.out!.heldLogs === forTwo, 'acknowledgements from members 0 and 1');
  await runtimes[2]!.stop();
  peers.set('out', [{ element: 'next', port: 'in', by: 'hash:key', members: members(endpoints).slice(0, 2) }]);
  release();
  await source.sourceDone;
  const all = [...got[0]!, ...got[1]!].map((l) => l.i as number).sort((a, b) => a - b);
  t.deepEqual(all, range(600), 'every log reached member 0 or 1, once');
  t.true(source.stats().ports.out!.batchesResent > 0);
  for (const m of [0, 1]) {
    for (const log of got[m]!.filter((l) => (l.i as number) >= 300)) {
      const was = before.get(log.key as string);
      if (was !== undefined) t.is(was, m, `key ${log.key} stayed on member ${m}`);
    }
  }
  await Promise.all([source.stop(), runtimes[0]!.stop(), runtimes[1]!.stop()]);
});

/** An index member holding the words given to it. */
function indexMember(words: string[]) {
  return element({
    onQuery(_port, request: { prefix: string }) {
      return words.filter((w) => w.startsWith(request.prefix));
    },
  });
}

test('a query to a shard asks every member and merges the answers', async (t) => {
  const eps = [ipc(), ipc(), ipc()];
  const shards = [['apple', 'avocado'], ['apricot', 'banana'], ['almond']];
  const members_: ElementRuntime[] = await Promise.all(
    eps.map((bind, m) => run(t, indexMember(shards[m]!), { element: 'index', member: m, members: 3, ports: { query: { kind: 'query', dir: 'in', bind } } })),
  );
  const wiring = { element: 'web', ports: { search: { kind: 'query' as const, dir: 'out' as const, targets: [target(eps, undefined, 'index', 'query')] } } };
  const web = await run(t, element({}), wiring);
  const merged = await web.ask('search', { prefix: 'a' }, undefined);
  t.deepEqual((merged as string[]).sort(), ['almond', 'apple', 'apricot', 'avocado']);
  t.deepEqual(await web.askEach('search', { prefix: 'b' }, undefined), [[], ['banana'], []]);
  // The asking element may declare its own merge: here, a count.
  const counting = await run(t, element({ merge: { search: (answers) => (answers as string[][]).reduce((n, a) => n + a.length, 0) } }), wiring);
  t.is(await counting.ask('search', { prefix: 'a' }, undefined), 4);
  await Promise.all([web.stop(), counting.stop(), ...members_.map((m) => m.stop())]);
});
