import test from 'ava';
import {
  ControlRefusedError, ManualPeerSource, QueryFailedError, WiringError, element, holdPeers, readStats, releasePeers, reshard,
  sendPeers, shedQueue, waitDrained, type ElementRuntime, type Log, type ReshardConsumer, type ReshardProducer, type Target,
} from '../../runtime/index.js';
import { QueryInPort } from '../../runtime/query-in.js';
import { fnv1a, memberForKey } from '../../runtime/spread.js';
import { ipc, range, run, sinkWiring, sourceWiring, target, until } from './wiring.js';

// Re-sharding: hold the producers, shed the consumers' queues, wait until nothing is in flight,
// change the members, release. Checks are on what happened (each log once, one member per key
// at a time, order per producer and key), never on how fast.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEY = 'reshard-test-key';

/** One handled log: who sent it, its key, which member handled it, and when (a logical clock). */
interface Handled {
  p: string;
  i: number;
  key: string;
  member: number;
  start: number;
  end: number;
}

let clock = 0;
const tick = () => ++clock;

/** A consumer member that takes `msPerLog` per log (awaited) and records each log it handled. */
function slowSink(member: number, seen: Handled[], msPerLog: number | ((log: Log, member: number) => Promise<void>)) {
  return element({
    async onPush(_port, logs) {
      for (const log of logs) {
        const start = tick();
        if (typeof msPerLog === 'number') await sleep(msPerLog);
        else await msPerLog(log, member);
        seen.push({ p: String(log.p), i: log.i as number, key: String(log.key), member, start, end: tick() });
      }
    },
  });
}

interface Consumer {
  rt: ElementRuntime;
  bind: string;
  control: string;
  id: string;
}

async function consumer(t: Parameters<typeof run>[0], member: number, seen: Handled[], msPerLog: number | ((log: Log, member: number) => Promise<void>)): Promise<Consumer> {
  const bind = ipc();
  const control = ipc();
  const rt = await run(t, slowSink(member, seen, msPerLog), { ...sinkWiring(bind, {}, member), control }, { controlKey: KEY, log: () => {} });
  return { rt, bind, control, id: String(member) };
}

const targetOf = (cs: Consumer[], by?: string): Target => ({
  element: 'next', port: 'in', members: cs.map((c) => ({ id: c.id, endpoint: c.bind })), ...(by === undefined ? {} : { by }),
});

/** Every (producer, i) once; the ones missing or seen twice otherwise. */
function exactlyOnce(seen: Handled[], expected: string[]): { missing: string[]; twice: string[] } {
  const count = new Map<string, number>();
  for (const h of seen) count.set(`${h.p}:${h.i}`, (count.get(`${h.p}:${h.i}`) ?? 0) + 1);
  return {
    missing: expected.filter((id) => !count.has(id)),
    twice: [...count].filter(([, n]) => n > 1).map(([id]) => id),
  };
}

/** Pairs of logs of one key handled by two members at once. */
function overlaps(seen: Handled[]): string[] {
  const byKey = new Map<string, Handled[]>();
  for (const h of seen) {
    if (!byKey.has(h.key)) byKey.set(h.key, []);
    byKey.get(h.key)!.push(h);
  }
  const found: string[] = [];
  for (const [key, hs] of byKey) {
    for (const a of hs) {
      for (const b of hs) {
        if (a.member < b.member && a.start < b.end && b.start < a.end) found.push(`${key}: ${a.p}:${a.i} on ${a.member} and ${b.p}:${b.i} on ${b.member}`);
      }
    }
  }
  return found;
}

/** Logs of one producer and key handled out of their order. */
function outOfOrder(seen: Handled[]): string[] {
  const last = new Map<string, number>();
  const found: string[] = [];
  for (const h of [...seen].sort((a, b) => a.start - b.start)) {
    const k = `${h.p}/${h.key}`;
    const was = last.get(k);
    if (was !== undefined && h.i < was) found.push(`${k}: ${h.i} after ${was}`);
    last.set(k, h.i);
  }
  return found;
}

test('hash:key, 2 producers, consumers 2 → 3 → 2 through reshard while logs flow: each log once, one member per key, in order', async (t) => {
  const seen: Handled[] = [];
  const cs = [await consumer(t, 0, seen, 2), await consumer(t, 1, seen, 2)];
  const N = 2000;
  const producers: ReshardProducer[] = [];
  const sources: ElementRuntime[] = [];
  for (const p of ['a', 'b']) {
    const control = ipc();
    sources.push(await run(t, element({
      *generate() {
        for (let i = 0; i < N; i += 20) yield range(20).map((j) => ({ p, i: i + j, key: `k${(i + j) % 40}` }));
      },
    }), { ...sourceWiring([targetOf(cs, 'hash:key')], { batch: 16, queue: 8 }), element: `source-${p}`, control }, { controlKey: KEY, log: () => {} }));
    producers.push({ control, port: 'out', target: 'next.in', name: `source-${p}` });
  }
  const setMembers = (members: Consumer[]) => async () => {
    for (const p of producers) await sendPeers(p.control, 'out', [targetOf(members, 'hash:key')], { key: KEY });
  };
  const asConsumers = (members: Consumer[]): ReshardConsumer[] => members.map((c) => ({ control: c.control, port: 'in', name: `next.${c.id}` }));

  await until(() => seen.length >= 400, 'the first 400 logs handled');
  cs.push(await consumer(t, 2, seen, 2));
  const up = await reshard(producers, asConsumers(cs), setMembers(cs), { key: KEY });
  t.log(`2 → 3: ${JSON.stringify(up)}`);

  await until(() => seen.filter((h) => h.member === 2).length >= 200, 'member 2 to handle its keys');
  const down = await reshard(producers, asConsumers(cs), setMembers(cs.slice(0, 2)), { key: KEY });
  t.log(`3 → 2: ${JSON.stringify(down)}`);
  // Member 2 has nothing left: nothing queued, nothing unacknowledged at the producers.
  const gone = cs[2]!.rt.stats().ports.in!;
  t.is(gone.queued, 0, 'member 2 holds nothing');
  for (const s of sources) t.false(s.stats().ports.out!.peers.includes(cs[2]!.bind), 'the producers let member 2 go');
  await cs[2]!.rt.stop();

  await Promise.all(sources.map((s) => s.sourceDone));
  await until(() => seen.length >= 2 * N, 'every log handled');
  for (const r of [up, down]) {
    t.is(r.held, 2);
    t.true(r.drained, 'both producers reached 0 in flight');
    t.deepEqual(r.unsupported, []);
  }
  t.true(up.shed + down.shed > 0, 'the consumers gave back what they had not started');
  const returned = sources.reduce((n, s) => n + s.stats().ports.out!.batchesReturned, 0);
  t.true(returned >= up.shed + down.shed, `the producers took ${returned} batches back`);
  t.true(seen.some((h) => h.member === 2), 'member 2 handled some keys');

  const { missing, twice } = exactlyOnce(seen, ['a', 'b'].flatMap((p) => range(N).map((i) => `${p}:${i}`)));
  t.deepEqual(missing, [], 'nothing lost');
  t.deepEqual(twice, [], 'nothing twice');
  t.is(seen.length, 2 * N);
  t.deepEqual(overlaps(seen).slice(0, 5), [], 'no key on two members at once');
  t.deepEqual(outOfOrder(seen).slice(0, 5), [], 'each key of each producer in order');
});

/** A key that the hash gives member `m` of two ('0', '1'). */
function keyFor(m: number): string {
  const two = ['0', '1'].map(fnv1a);
  for (let i = 0; ; i++) if (memberForKey(`key${i}`, two) === m) return `key${i}`;
}

test('without reshard a key runs on two members at once and a removed member\'s batch comes twice; with reshard neither happens', async (t) => {
  const K1 = keyFor(1); // moves to member 1 when it joins
  const K0 = keyFor(0); // stays on member 0 until it leaves
  for (const barrier of [false, true]) {
    const p = barrier ? 'with' : 'without';
    const seen: Handled[] = [];
    /** The handler of a log with `block` waits until its gate (`<member>:<i>`) opens. */
    const gates = new Map<string, () => void>();
    const blocked = (log: Log, member: number) => (log.block ? new Promise<void>((r) => gates.set(`${member}:${log.i}`, r)) : Promise.resolve());
    const cs = [await consumer(t, 0, seen, blocked), await consumer(t, 1, seen, blocked)];
    const peers = new ManualPeerSource();
    const control = ipc();
    const source = await run(t, element({}), { ...sourceWiring([targetOf(cs.slice(0, 1), 'hash:key')], { flushMs: 1 }), control }, { peers, controlKey: KEY, log: () => {} });
    const producers: ReshardProducer[] = [{ control, port: 'out', target: 'next.in' }];
    const consumers: ReshardConsumer[] = cs.map((c) => ({ control: c.control, port: 'in' }));
    const changedAt: number[] = [];
    const change = (members: Consumer[]) => async () => {
      changedAt.push(tick());
      peers.set('out', [targetOf(members, 'hash:key')]);
    };
    const openLater = async (gate: string) => {
      await sleep(300);
      const at = tick();
      gates.get(gate)!();
      return at;
    };
    const push = (i: number, key: string, block = false) => void source.push('out', { p, i, key, ...(block ? { block } : {}) }, undefined);

    // 1. Member 0 is in the middle of log 0 of K1 (its handler waits) when member 1 joins: K1 moves to member 1.
    push(0, K1, true);
    await until(() => gates.has('0:0'), 'member 0 to start log 0');
    if (barrier) {
      const resharding = reshard(producers, consumers, change(cs), { key: KEY });
      push(1, K1); // reaches member 0's queue before the hold (then it is shed), or waits in the hold
      const openedAt = await openLater('0:0');
      const r = await resharding;
      t.true(r.drained);
      t.true(changedAt[0]! > openedAt, 'the members changed only after member 0 finished log 0');
    } else {
      await change(cs)();
      push(1, K1);
      await until(() => seen.some((h) => h.i === 1), 'member 1 to handle log 1 while member 0 is still on log 0');
      gates.get('0:0')!();
    }
    await until(() => seen.some((h) => h.i === 0) && seen.some((h) => h.i === 1), 'logs 0 and 1');

    // 2. Member 0 is in the middle of log 2 of K0 when it is removed.
    push(2, K0, true);
    await until(() => gates.has('0:2'), 'member 0 to start log 2');
    if (barrier) {
      const resharding = reshard(producers, consumers, change(cs.slice(1)), { key: KEY });
      const openedAt = await openLater('0:2');
      const r = await resharding;
      t.true(r.drained);
      t.true(changedAt[1]! > openedAt, 'member 0 left only after it finished log 2');
    } else {
      await change(cs.slice(1))();
      // Its unacknowledged batch goes to member 1 at once.
      await until(() => gates.has('1:2'), 'member 1 to start log 2 as well');
      gates.get('0:2')!();
      gates.get('1:2')!();
    }
    push(3, K0);
    await until(() => seen.some((h) => h.i === 3) && seen.filter((h) => h.i === 2).length === (barrier ? 1 : 2), 'logs 2 and 3');
    await source.stop();
    for (const c of cs) await c.rt.stop();

    const { twice } = exactlyOnce(seen, range(4).map((i) => `${p}:${i}`));
    t.log(`${p} reshard: ${overlaps(seen).length} overlaps, twice: ${JSON.stringify(twice)}`);
    if (barrier) {
      t.deepEqual(overlaps(seen), [], 'with reshard: no key on two members at once');
      t.deepEqual(twice, [], 'with reshard: nothing twice');
      t.deepEqual(outOfOrder(seen), [], 'with reshard: in order');
      t.is(seen.length, 4);
      t.is(seen.find((h) => h.i === 1)!.member, 1, 'log 1 went to member 1');
    } else {
      t.true(overlaps(seen).some((o) => o.startsWith(`${K1}:`)), `without reshard: ${K1} ran on two members at once`);
      t.deepEqual(twice, [`${p}:2`], 'without reshard: the removed member\'s batch was handled twice');
    }
  }
});

test('round-robin 3 → 2 through reshard: the leaving member\'s queue is shed, it stops with nothing in flight, each log once', async (t) => {
  const seen: Handled[] = [];
  const cs = [await consumer(t, 0, seen, 2), await consumer(t, 1, seen, 2), await consumer(t, 2, seen, 2)];
  const N = 1500;
  const producers: ReshardProducer[] = [];
  const sources: ElementRuntime[] = [];
  for (const p of ['a', 'b']) {
    const control = ipc();
    sources.push(await run(t, element({
      *generate() {
        for (let i = 0; i < N; i += 20) yield range(20).map((j) => ({ p, i: i + j, key: `k${(i + j) % 40}` }));
      },
    }), { ...sourceWiring([targetOf(cs)], { batch: 16, queue: 8 }), element: `source-${p}`, control }, { controlKey: KEY, log: () => {} }));
    producers.push({ control, port: 'out', target: 'next.in', name: `source-${p}` });
  }
  await until(() => seen.length >= 300 && cs[2]!.rt.stats().ports.in!.queued > 0, 'a flow, and a queue at member 2');
  // As HQ does for a round-robin shard: only the leaving member gives its queue back.
  const leaving = cs[2]!;
  const r = await reshard(producers, [{ control: leaving.control, port: 'in', name: 'next.2' }], async () => {
    for (const p of producers) await sendPeers(p.control, 'out', [targetOf(cs.slice(0, 2))], { key: KEY });
  }, { key: KEY });
  const staying = [cs[0]!, cs[1]!].map((c) => c.rt.stats().ports.in!.queued);
  t.log(`${JSON.stringify(r)}; the staying members still had ${staying.join(' and ')} logs queued (not waited for)`);
  t.is(r.held, 2);
  t.true(r.drained);
  t.true(r.shed > 0, 'member 2 gave back what it had not started');
  const gone = await readStats(leaving.control, { key: KEY });
  t.is(gone.ports.in!.queued, 0, 'member 2 holds nothing');
  t.true(gone.ports.in!.batchesReturned >= r.shed);
  for (const s of sources) t.deepEqual(s.stats().ports.out!.peers, [cs[0]!.bind, cs[1]!.bind]);
  const handledBy2 = seen.filter((h) => h.member === 2).length;
  await leaving.rt.stop();

  await Promise.all(sources.map((s) => s.sourceDone));
  await until(() => seen.length >= 2 * N, 'every log handled');
  t.is(seen.filter((h) => h.member === 2).length, handledBy2, 'member 2 handled nothing after it left');
  const { missing, twice } = exactlyOnce(seen, ['a', 'b'].flatMap((p) => range(N).map((i) => `${p}:${i}`)));
  t.deepEqual(missing, [], 'nothing lost');
  t.deepEqual(twice, [], 'nothing twice');
  t.is(seen.length, 2 * N);
  for (const s of sources) t.is(s.stats().ports.out!.batchesResent, 0, 'no batch was sent again for a removed member');
});

test('a hold that is never released ends by itself after holdMs and the logs flow again', async (t) => {
  const got: Log[] = [];
  const bind = ipc();
  await run(t, element({ onPush: (_p, logs) => void got.push(...logs) }), sinkWiring(bind));
  const control = ipc();
  let more!: () => void;
  const later = new Promise<void>((r) => (more = r));
  const source = await run(t, element({
    async *generate() {
      yield range(100).map((i) => ({ i }));
      await later;
      yield range(400).map((i) => ({ i: 100 + i }));
    },
  }), { ...sourceWiring([target([bind])], { batch: 10, flushMs: 1 }), control }, { controlKey: KEY, log: () => {} });
  await until(() => got.length === 100, 'the first hundred');
  const before = performance.now();
  const { inFlight } = await holdPeers(control, 'out', 'next.in', { key: KEY, holdMs: 300 });
  t.is(inFlight, 0);
  more();
  await until(() => source.stats().ports.out!.blockedMs > 0, 'the source to wait on the hold');
  // Still within the hold (it began after `before`): nothing more reached the sink.
  if (performance.now() - before < 250) t.is(got.length, 100, 'nothing handed out while held');
  await source.sourceDone; // no release: the hold's time ran out
  t.deepEqual(got.map((l) => l.i).sort((a, b) => (a as number) - (b as number)), range(500));
  t.true(source.stats().ports.out!.blockedMs > 0);
  // Release after the expiry is harmless (idempotent).
  t.deepEqual(await releasePeers(control, 'out', 'next.in', { key: KEY }), { inFlight: 0 });
});

test('an element without the key, or asked with another, refuses every re-shard request and nothing changes', async (t) => {
  const got: Log[] = [];
  const bind = ipc();
  const sinkControl = ipc();
  let gate!: () => void;
  const first = new Promise<void>((r) => (gate = r));
  // The sink waits on its first batch, so the rest queue up behind it.
  const sinkRt = await run(t, element({ async onPush(_p, logs) { await first; got.push(...logs); } }), { ...sinkWiring(bind), control: sinkControl }, { controlKey: KEY, log: () => {} });
  const keyless = ipc();
  let more!: () => void;
  const later = new Promise<void>((r) => (more = r));
  const source = await run(t, element({
    async *generate() {
      yield range(50).map((i) => ({ i }));
      await later;
      yield range(50).map((i) => ({ i: 50 + i }));
    },
  }), { ...sourceWiring([target([bind])], { batch: 5, flushMs: 1 }), control: keyless }, { log: () => {} }); // no controlKey
  const wrong = { key: 'not-the-key' };
  for (const key of [KEY, 'not-the-key', '']) {
    await t.throwsAsync(holdPeers(keyless, 'out', 'next.in', { key, holdMs: 10_000 }), { instanceOf: ControlRefusedError });
    await t.throwsAsync(waitDrained(keyless, 'out', 'next.in', { key, waitMs: 10 }), { instanceOf: ControlRefusedError });
    await t.throwsAsync(releasePeers(keyless, 'out', 'next.in', { key }), { instanceOf: ControlRefusedError });
  }
  await until(() => sinkRt.stats().ports.in!.queued === 50, 'the first fifty at the sink, queued behind its first batch');
  await t.throwsAsync(shedQueue(sinkControl, 'in', wrong), { instanceOf: ControlRefusedError });
  let changed = false;
  await t.throwsAsync(
    reshard([{ control: keyless, port: 'out', target: 'next.in' }], [{ control: sinkControl, port: 'in' }], async () => void (changed = true), { key: KEY }),
    { instanceOf: ControlRefusedError },
  );
  t.false(changed, 'a refused reshard does not run the change');
  const sink = await readStats(sinkControl, { key: KEY });
  t.is(sink.ports.in!.batchesReturned, 0, 'the refused shed gave nothing back');
  t.is(sink.ports.in!.queued, 50, 'its queue is as it was');
  // Not held: everything flows once the sink goes on.
  gate();
  more();
  await source.sourceDone;
  t.deepEqual(got.map((l) => l.i), range(100));
  t.is(source.stats().ports.out!.batchesReturned, 0);
});

test('bad arguments are WiringErrors naming the port or target', async (t) => {
  const bind = ipc();
  const control = ipc();
  const sinkControl = ipc();
  await run(t, element({ onPush() {} }), { ...sinkWiring(bind), control: sinkControl }, { controlKey: KEY, log: () => {} });
  const source = await run(t, element({}), { ...sourceWiring([target([bind])]), control }, { controlKey: KEY, log: () => {} });
  t.throws(() => source.hold('nope', 'next.in'), { instanceOf: WiringError, message: /no push out port 'nope'.*out/ });
  t.throws(() => source.hold('out', 'other.in'), { instanceOf: WiringError, message: /port 'out' has no target 'other\.in' \(its targets: next\.in\)/ });
  t.throws(() => source.shed('in'), { instanceOf: WiringError, message: /no push in port 'in'/ });
  await t.throwsAsync(holdPeers(control, 'out', 'other.in', { key: KEY }), { instanceOf: QueryFailedError, message: /no target 'other\.in'/ });
  await t.throwsAsync(holdPeers(control, 'out', 'next.in', { key: KEY, holdMs: -1 }), { message: /hold on port 'out', target 'next\.in': holdMs must be/ });
  await t.throwsAsync(waitDrained(control, 'out', '', { key: KEY }), { message: /drained on port 'out': target/ });
  await t.throwsAsync(shedQueue(sinkControl, 'out', { key: KEY }), { message: /no push in port 'out' \(its push in ports: in\)/ });
  await t.throwsAsync(waitDrained(control, 'out', 'next.in', { key: KEY, incarnations: [1 as unknown as string] }), { message: /incarnations must be a list of strings/ });
  t.deepEqual(await holdPeers(control, 'out', 'next.in', { key: KEY, holdMs: 1000 }), { inFlight: 0 }, 'a good request still works');
  t.deepEqual(await releasePeers(control, 'out', 'next.in', { key: KEY }), { inFlight: 0 });
  t.deepEqual(await releasePeers(control, 'out', 'next.in', { key: KEY }), { inFlight: 0 }, 'release is idempotent');
  await t.throwsAsync(reshard([], [], async () => {}, { key: KEY, holdMs: Number.NaN }), { instanceOf: WiringError });
});

test('producers and consumers that do not know the ops, or do not answer, are listed in unsupported and skipped (fake control socket)', async (t) => {
  // An older runtime's control socket: it knows stats and answers anything else as unknown.
  const old = ipc();
  const fake = new QueryInPort('$control', old, 4, async (_p, request) => {
    const { key: _key, ...rest } = request as Record<string, unknown>;
    if (rest.op === 'stats') return {};
    throw new Error(`unknown control request ${JSON.stringify(rest)}`);
  });
  await fake.bind();
  void fake.run().catch(() => {});
  t.teardown(() => fake.close());
  const silent = ipc(); // nobody there

  const seen: Handled[] = [];
  const c = await consumer(t, 0, seen, 1);
  const control = ipc();
  const source = await run(t, element({ *generate() { for (const i of range(200)) yield { p: 's', i, key: `k${i % 7}` }; } }),
    { ...sourceWiring([targetOf([c])], { batch: 10 }), control }, { controlKey: KEY, log: () => {} });
  let changed = false;
  const r = await reshard(
    [{ control, port: 'out', target: 'next.in', name: 'source' }, { control: old, port: 'out', target: 'next.in', name: 'old-producer' }, { control: silent, port: 'out', target: 'next.in' }],
    [{ control: c.control, port: 'in', name: 'next.0' }, { control: old, port: 'in', name: 'old-consumer' }],
    async () => void (changed = true),
    { key: KEY, timeoutMs: 300 },
  );
  t.true(changed);
  t.is(r.held, 1);
  t.deepEqual([...r.unsupported].sort(), ['old-consumer', 'old-producer', silent].sort());
  await source.sourceDone;
  t.is(seen.length, 200, 'the held producer was released');
  t.deepEqual(exactlyOnce(seen, range(200).map((i) => `s:${i}`)), { missing: [], twice: [] });
});

test('an out port\'s blockedMs includes a block still going on, counted once', async (t) => {
  const bind = ipc();
  let gate!: () => void;
  const open = new Promise<void>((r) => (gate = r));
  await run(t, element({ async onPush() { await open; } }), sinkWiring(bind));
  const source = await run(t, element({ *generate() { for (const i of range(20)) yield { i }; } }), sourceWiring([target([bind])], { batch: 1, queue: 1, flushMs: 1 }));
  await until(() => source.stats().ports.out!.blockedMs >= 200, 'blockedMs to grow while the port is still blocked');
  const during = source.stats().ports.out!.blockedMs;
  await sleep(50);
  t.true(source.stats().ports.out!.blockedMs > during, 'it keeps growing while blocked');
  gate();
  await source.sourceDone;
  const after = source.stats();
  t.true(after.ports.out!.blockedMs >= during, `after ${after.ports.out!.blockedMs} ≥ during ${during}`);
  t.true(after.ports.out!.blockedMs <= after.uptimeMs, `no double count: ${after.ports.out!.blockedMs} ≤ uptime ${after.uptimeMs}`);
  await sleep(50);
  t.is(source.stats().ports.out!.blockedMs, after.ports.out!.blockedMs, 'no longer growing once the block ended');
});

test('drained waits take at most 8 of the control socket\'s 16 slots: other requests are answered meanwhile', async (t) => {
  const bind = ipc();
  let gate!: () => void;
  const open = new Promise<void>((r) => (gate = r));
  await run(t, element({ async onPush() { await open; } }), sinkWiring(bind));
  const control = ipc();
  const source = await run(t, element({ *generate() { yield range(10).map((i) => ({ i })); } }), { ...sourceWiring([target([bind])], { flushMs: 1 }), control }, { controlKey: KEY, log: () => {} });
  await until(() => source.stats().ports.out!.logsOut === 10 && source.stats().ports.out!.heldLogs === 10, 'ten logs in flight');
  let settled = 0;
  const waits = range(10).map(() => waitDrained(control, 'out', 'next.in', { key: KEY, waitMs: 60_000 }).then((a) => {
    settled++;
    return a;
  }));
  await until(() => settled === 2, 'the two waits beyond eight to be answered at once');
  for (const _ of range(10)) t.is((await readStats(control, { key: KEY })).element, 'source', 'stats answered while eight drained requests wait');
  t.deepEqual(await holdPeers(control, 'out', 'next.in', { key: KEY, holdMs: 5000 }), { inFlight: 10 });
  t.deepEqual(await releasePeers(control, 'out', 'next.in', { key: KEY }), { inFlight: 10 });
  t.is(settled, 2, 'eight still wait');
  gate();
  const answers = await Promise.all(waits);
  t.is(answers.filter((a) => a.inFlight === 0).length, 8, 'the eight that waited saw nothing in flight');
  t.is(answers.filter((a) => a.inFlight === 10).length, 2, 'the two beyond were answered at once');
});

test('setPeers while held keeps the hold: what is spread again waits for the release', async (t) => {
  const [a, b] = [ipc(), ipc()];
  const gotA: Log[] = [];
  const gotB: Log[] = [];
  await run(t, element({ onPush: (_p, logs) => void gotA.push(...logs) }), sinkWiring(a));
  await run(t, element({ onPush: (_p, logs) => void gotB.push(...logs) }), sinkWiring(b));
  const control = ipc();
  const source = await run(t, element({}), { ...sourceWiring([target([a])], { batch: 5, flushMs: 1 }), control }, { controlKey: KEY, log: () => {} });
  void source.pushMany('out', range(10).map((i) => ({ i })), undefined);
  await until(() => gotA.length === 10, 'the first ten at A');
  t.deepEqual(await holdPeers(control, 'out', 'next.in', { key: KEY }), { inFlight: 0 });
  const emitted = source.pushMany('out', range(20).map((i) => ({ i: 10 + i })), undefined);
  t.not(emitted, undefined, 'emit waits while held');
  await sendPeers(control, 'out', [target([b])], { key: KEY });
  await until(() => source.stats().ports.out!.blockedMs > 0, 'the port to be blocked on the hold');
  t.deepEqual(source.stats().ports.out!.peers, [b]);
  t.is(source.stats().ports.out!.heldLogs, 20, 'twenty logs wait in the port');
  t.is(gotB.length, 0, 'nothing handed out while held, new members or not');
  await releasePeers(control, 'out', 'next.in', { key: KEY });
  await emitted;
  await until(() => gotB.length === 20, 'the twenty at B after the release');
  t.deepEqual(gotB.map((l) => l.i), range(20).map((i) => 10 + i), 'in order');
  t.is(gotA.length, 10);
});
