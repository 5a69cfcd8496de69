import test from 'ava';
import { freePort } from '../support/ports.js';
import { element, readStats, type ElementStats } from '../../runtime/index.js';
import { ipc, range, run, sinkWiring, sourceWiring, target, until } from './wiring.js';

// Issue 17: busy time, queue depth and backpressure of in ports, latency percentiles of query
// ports. Bounds are generous: these tests check what is measured, never how fast.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a slow push handler fed faster than it handles: busy near wall time, a full queue holding back its sender, then drained', async (t) => {
  const ep = ipc();
  const queue = 4;
  const batch = 2;
  // 20 ms per log; the sink's own tuning (queue 32, batch 256) is not what bounds it: the producer's window is.
  const sink = await run(t, element({ async onPush(_p, logs) { await sleep(20 * logs.length); } }), sinkWiring(ep));
  const source = await run(
    t,
    element({ *generate() { for (const i of range(60)) yield { i }; } }),
    sourceWiring([target([ep])], { queue, batch, flushMs: 1 }),
  );

  // While the source is blocked: the sink holds the source's whole window.
  let seen: ElementStats | undefined;
  await until(() => {
    const s = sink.stats();
    if (s.ports.in!.backpressure && s.ports.in!.queued > 0) seen = s;
    return seen !== undefined;
  }, 'the sink to apply backpressure');
  const held = source.stats().ports.out!.heldLogs;
  const inPort = seen!.ports.in!;
  t.true(inPort.queued > 0 && inPort.queued <= queue * batch, `queued ${inPort.queued}`);
  t.is(inPort.queueLimit, queue * batch, 'the limit is the producer\'s window (4 batches of 2 logs)');
  t.true(held >= queue * batch, `the source holds its full window (${held} logs) while the sink pushes back`);

  // Busy while the backlog lasts: Δ busyMs ÷ Δ wall time near 1.
  const a = sink.stats();
  const wallA = performance.now();
  await sleep(300);
  const b = sink.stats();
  const wallB = performance.now();
  t.true(b.ports.in!.queued > 0, 'still a backlog (60 logs take about 1.2 s)');
  const fraction = (b.busyMs - a.busyMs) / (wallB - wallA);
  t.log(`busy fraction under a backlog: ${fraction.toFixed(3)}`);
  t.true(fraction > 0.6 && fraction <= 1.05, `busy fraction ${fraction}`);

  await source.sourceDone;
  t.true(source.stats().ports.out!.blockedMs > 0, 'the source waited on its window');
  await until(() => sink.stats().ports.in!.queued === 0 && !sink.stats().ports.in!.backpressure, 'the sink to drain');
  const after = sink.stats();
  t.is(after.ports.in!.logsIn, 60);
  t.false(after.ports.in!.backpressure);
  t.true(after.busyMs >= 60 * 20 * 0.9, `busyMs ${after.busyMs} for 60 logs of 20 ms`);
  t.true(after.busyMs <= after.uptimeMs + 1, 'busy time never exceeds wall time');
  // Out ports and push ports have no queue or percentiles of their own: zeros, always there.
  const out = source.stats().ports.out!;
  t.deepEqual([out.queued, out.queueLimit, out.backpressure, out.latencyP50Ms, out.latencyP99Ms], [0, 0, false, 0, 0]);
  t.is(source.stats().busyMs, 0, 'a source has no handlers');
});

test('query ports give p50 and p99 of recent latencies, asker and answerer', async (t) => {
  const ep = ipc();
  const db = await run(
    t,
    element({ async onQuery(_p, request: { ms: number }) { await sleep(request.ms); return request.ms; } }),
    { element: 'db', ports: { query: { kind: 'query', dir: 'in', bind: ep } } },
  );
  const web = await run(t, element({}), { element: 'web', ports: { search: { kind: 'query', dir: 'out', targets: [target([ep])] } } });
  // 100 queries: 98 take 10 ms, 2 take 150 ms (so the 50th is fast and the 99th slow), 20 at a time.
  const delays = range(100).map((i) => (i === 37 || i === 71 ? 150 : 10));
  for (let i = 0; i < delays.length; i += 20) {
    await Promise.all(delays.slice(i, i + 20).map((ms) => web.ask('search', { ms }, undefined)));
  }
  const answered = db.stats().ports.query!;
  const asked = web.stats().ports.search!;
  t.log(`answerer p50 ${answered.latencyP50Ms} p99 ${answered.latencyP99Ms}; asker p50 ${asked.latencyP50Ms} p99 ${asked.latencyP99Ms}`);
  for (const [who, p] of [['answerer', answered], ['asker', asked]] as const) {
    t.true(p.latencyP50Ms >= 8 && p.latencyP50Ms < 100, `${who} p50 ${p.latencyP50Ms}`);
    t.true(p.latencyP99Ms >= 140 && p.latencyP99Ms < 1000, `${who} p99 ${p.latencyP99Ms}`);
    t.true(p.latencyP50Ms <= p.latencyP99Ms && p.latencyP99Ms <= p.latency.maxMs);
  }
  t.deepEqual([answered.queued, answered.queueLimit, answered.backpressure], [0, 64, false], 'idle: none in hand; the limit is concurrency');
  t.true(db.stats().busyMs >= 98 * 10 / 20, 'the answerer was busy while its handlers ran');
});

test('a query in port with every handler busy applies backpressure', async (t) => {
  const ep = ipc();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const db = await run(
    t,
    element({ async onQuery() { await gate; return 1; } }),
    { element: 'db', ports: { query: { kind: 'query', dir: 'in', bind: ep, concurrency: 2 } } },
  );
  const web = await run(t, element({}), { element: 'web', ports: { search: { kind: 'query', dir: 'out', targets: [target([ep])] } } });
  const answers = Promise.all(range(4).map(() => web.ask('search', {}, undefined)));
  await until(() => db.stats().ports.query!.backpressure, 'both handlers busy');
  const busy = db.stats().ports.query!;
  t.deepEqual([busy.queued, busy.queueLimit], [2, 2]);
  release();
  t.deepEqual(await answers, [1, 1, 1, 1]);
  await until(() => !db.stats().ports.query!.backpressure, 'the port to free up');
  t.is(db.stats().ports.query!.queued, 0);
});

test('an idle element stays near zero busy time; the control socket gives the new figures', async (t) => {
  const [ep, qp, control] = [ipc(), ipc(), `tcp://127.0.0.1:${await freePort()}`];
  const idle = await run(
    t,
    element({ onPush() {}, onQuery: () => 1 }),
    {
      element: 'idle',
      control,
      ports: { in: { kind: 'push', dir: 'in', bind: ep }, q: { kind: 'query', dir: 'in', bind: qp } },
    },
    { controlKey: 'k' },
  );
  // A producer connected that sends nothing.
  await run(t, element({ async *generate(ctx) { await new Promise((r) => ctx.signal.addEventListener('abort', r)); } }), sourceWiring([target([ep])]));
  await sleep(300);
  const stats = await readStats(control, { key: 'k' });
  t.true(stats.uptimeMs >= 250);
  t.true(stats.busyMs < 0.05 * stats.uptimeMs, `busyMs ${stats.busyMs} over ${stats.uptimeMs} ms`);
  t.deepEqual(
    [stats.ports.in!.queued, stats.ports.in!.queueLimit, stats.ports.in!.backpressure],
    [0, 32 * 256, false],
    'push in: the default window (32 batches of 256 logs)',
  );
  t.deepEqual([stats.ports.q!.latencyP50Ms, stats.ports.q!.latencyP99Ms, stats.ports.q!.queueLimit], [0, 0, 64]);
  t.is(idle.stats().busyMs, 0, 'the control socket\'s own handler is not the element\'s');
});
