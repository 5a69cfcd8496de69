import test from 'ava';
import { element, type ElementRuntime, type Log } from '../../runtime/index.js';
import { ipc, range, sinkWiring, sourceWiring, target, until, run } from './wiring.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a source pushes every log to a sink, in order, in batches', async (t) => {
  const ep = ipc();
  const got: number[] = [];
  const sink = await run(t, element({ onPush: (_p, logs) => void got.push(...logs.map((l) => l.i as number)) }), sinkWiring(ep));
  const source = await run(
    t,
    element({ *generate() { for (const i of range(5000)) yield { i }; } }),
    sourceWiring([target([ep])], { batch: 100 }),
  );
  await source.sourceDone;
  t.deepEqual(got, range(5000));
  const out = source.stats().ports.out!;
  t.is(out.logsAcked, 5000);
  t.is(out.heldLogs, 0);
  t.true(out.batchesOut >= 50, `${out.batchesOut} batches for 5000 logs of 100`);
  t.is(sink.stats().ports.in!.logsIn, 5000);
  await Promise.all([source.stop(), sink.stop()]);
});

test('a batch that is not full is sent after flushMs', async (t) => {
  const ep = ipc();
  const got: Log[] = [];
  const sink = await run(t, element({ onPush: (_p, logs) => void got.push(...logs) }), sinkWiring(ep));
  const source = await run(t, element({ *generate() { yield { one: 1 }; } }), sourceWiring([target([ep])], { batch: 1000, flushMs: 20 }));
  await until(() => got.length === 1, 'the lone log');
  t.deepEqual(got, [{ one: 1 }]);
  await Promise.all([source.stop(), sink.stop()]);
});

test('a slow consumer blocks the producer: memory stays bounded and nothing is lost', async (t) => {
  const ep = ipc();
  const queue = 4;
  const batch = 10;
  // What the producer may hold: `queue` unacknowledged batches, one sealed and waiting, one open.
  const bound = (queue + 2) * batch;
  const got: number[] = [];
  let worstAhead = 0;
  let producer: ElementRuntime | undefined;
  const sink = await run(
    t,
    element({
      async onPush(_p, logs) {
        await sleep(1);
        got.push(...logs.map((l) => l.i as number));
        const ahead = producer!.stats().ports.out!.logsOut - got.length;
        worstAhead = Math.max(worstAhead, ahead);
      },
    }),
    sinkWiring(ep, { queue }),
  );
  producer = await run(
    t,
    element({ *generate() { for (const i of range(3000)) yield { i, pad: 'x'.repeat(100) }; } }),
    sourceWiring([target([ep])], { batch, queue }),
  );
  await producer.sourceDone;
  const out = producer.stats().ports.out!;
  t.deepEqual(got, range(3000), 'every log, once, in order');
  t.true(worstAhead <= bound, `the producer ran ${worstAhead} logs ahead of the consumer (bound ${bound})`);
  t.true(out.heldLogsMax <= bound, `the producer held ${out.heldLogsMax} logs (bound ${bound})`);
  t.true(out.blockedMs > 0, 'the producer waited on a full queue');
  await Promise.all([producer.stop(), sink.stop()]);
});

test('a map element passes backpressure upstream, and the chain holds no more than the source queue', async (t) => {
  const [mid, end] = [ipc(), ipc()];
  const got: number[] = [];
  const sink = await run(
    t,
    element({ async onPush(_p, logs) { await sleep(2); got.push(...logs.map((l) => l.i as number)); } }),
    sinkWiring(end, { queue: 2 }),
  );
  const map = await run(
    t,
    element({ async onPush(_p, logs, ctx) { for (const log of logs) await ctx.emit('out', { i: log.i, twice: (log.i as number) * 2 }); } }),
    { element: 'map', ports: { in: { kind: 'push', dir: 'in', bind: mid, queue: 2 }, out: { kind: 'push', dir: 'out', targets: [target([end])], batch: 10, queue: 2 } } },
  );
  const source = await run(
    t,
    element({ *generate() { for (const i of range(1000)) yield { i }; } }),
    sourceWiring([target([mid])], { batch: 10, queue: 2 }),
  );
  await source.sourceDone;
  t.deepEqual(got, range(1000));
  t.true(source.stats().ports.out!.blockedMs > 0, 'the source waited on the map');
  // Chained acknowledgements: a source batch is acknowledged only once the sink has its logs,
  // so the map never holds more than the source's queue (2 batches of 10).
  t.true(map.stats().ports.out!.heldLogsMax <= 20, `the map held ${map.stats().ports.out!.heldLogsMax} logs`);
  t.is(source.stats().ports.out!.logsAcked, 1000);
  await Promise.all([source.stop(), map.stop(), sink.stop()]);
});

test('an out port with two targets gives every log to both (fan-out)', async (t) => {
  const [a, b] = [ipc(), ipc()];
  const gotA: Log[] = [];
  const gotB: Log[] = [];
  const sinkA = await run(t, element({ onPush: (_p, logs) => void gotA.push(...logs) }), sinkWiring(a));
  const sinkB = await run(t, element({ onPush: (_p, logs) => void gotB.push(...logs) }), sinkWiring(b));
  const source = await run(
    t,
    element({ *generate() { for (const i of range(300)) yield { i }; } }),
    sourceWiring([target([a], undefined, 'a'), target([b], undefined, 'b')], { batch: 7 }),
  );
  await source.sourceDone;
  t.is(gotA.length, 300);
  t.deepEqual(gotA, gotB);
  await Promise.all([source.stop(), sinkA.stop(), sinkB.stop()]);
});

test('a producer started before its consumer waits for it, then delivers everything', async (t) => {
  const ep = ipc();
  const source = await run(
    t,
    element({ *generate() { for (const i of range(500)) yield { i }; } }),
    sourceWiring([target([ep])], { batch: 10, queue: 4 }),
  );
  await until(() => source.stats().ports.out!.logsOut >= 50, 'the source to fill its queue');
  const got: number[] = [];
  const sink = await run(t, element({ onPush: (_p, logs) => void got.push(...logs.map((l) => l.i as number)) }), sinkWiring(ep));
  await source.sourceDone;
  t.deepEqual(got, range(500));
  await Promise.all([source.stop(), sink.stop()]);
});

test('a throwing push handler stops the element with its error', async (t) => {
  const ep = ipc();
  const sink = await run(t, element({ onPush() { throw new Error('bad log'); } }), sinkWiring(ep));
  const source = await run(t, element({ *generate() { yield { i: 1 }; } }), sourceWiring([target([ep])], { flushMs: 1 }), { drainMs: 0 });
  await t.throwsAsync(sink.done, { message: 'bad log' });
  t.is(source.stats().ports.out!.logsAcked, 0, 'the failed batch was not acknowledged');
  await source.stop();
});
