// The autoscale controller (issue 17, part 3): each element's figures → keep or scale to N,
// with the line that explains it. Pure: tables of synthetic metric histories, and a loop
// that feeds the controller a pipeline under a step change.
import test from 'ava';
import {
  AutoscaleError, autoscaleDecisions, DEFAULT_AUTOSCALE, shrinkLullMs,
  type AutoscaleDecision, type AutoscaleElement, type AutoscaleOptions, type MetricSample,
} from '../../plan/index.js';

/** What one instance sustains, logs/s (busy all the time). */
const C = 100;
const S = 1000;

/**
 * One member's readings, one a second at t = from … to (s), as the runtime counts: logs
 * processed and busy seconds since the instance started (counters), the offered rate and
 * queue depth now (gauges). `share(t)` is the rate offered to this member during second t;
 * it processes what it can (its capacity, `C` unless given) and queues the rest.
 */
function member(id: string, from: number, to: number, share: (t: number) => number, o: { capacity?: number; incarnation?: string; busyNoise?: (t: number) => number } = {}): MetricSample[] {
  const capacity = o.capacity ?? C;
  let processed = 0;
  let busy = 0;
  let queue = 0;
  const out: MetricSample[] = [];
  for (let t = from; t <= to; t++) {
    const offered = share(t);
    const done = Math.min(capacity, offered + queue);
    queue += offered - done;
    processed += done;
    // A member that processes nothing is stuck in a handler: busy all the time.
    busy += (capacity > 0 ? done / capacity : 1) * (o.busyNoise?.(t) ?? 1);
    out.push({ member: id, at: t * S, processed, busySeconds: busy, offeredPerSecond: offered, queueDepth: queue, ...(o.incarnation ? { incarnation: o.incarnation } : {}) });
  }
  return out;
}

/** `n` members sharing `total(t)` evenly from t = from to t = to. */
function spread(n: number, from: number, to: number, total: (t: number) => number, o: Parameters<typeof member>[4] = {}): MetricSample[] {
  return Array.from({ length: n }, (_, i) => member(`${i + 1}`, from, to, (t) => total(t) / n, o)).flat();
}

const step = (before: number, after: number, at: number) => (t: number) => (t <= at ? before : after);
const flat = (rate: number) => () => rate;

function el(size: number, samples: MetricSample[], o: Partial<AutoscaleElement> & { min?: number; max?: number; cost?: number } = {}): AutoscaleElement {
  const { min = 1, max = 10, cost = 0, ...rest } = o;
  return { element: 'mid', policy: { min, max, cost }, size, samples, ...rest };
}

function decide(e: AutoscaleElement, nowSeconds: number, options: Partial<AutoscaleOptions> = {}): AutoscaleDecision {
  return autoscaleDecisions({ now: nowSeconds * S, elements: [e] }, options)[0]!;
}

/** A deterministic noise source: a fixed LCG, values in [-1, 1). */
function noise(seed: number): (t: number) => number {
  const values: number[] = [];
  let x = seed;
  for (let i = 0; i < 2000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    values.push((x / 2147483648) * 2 - 1);
  }
  return (t) => values[((t % 2000) + 2000) % 2000]!;
}

type Expect = { action: 'keep' | 'scale'; to: number; reason?: RegExp | string };
const cases: { name: string; element: AutoscaleElement; now: number; options?: Partial<AutoscaleOptions>; expect: Expect }[] = [
  // steady
  {
    name: 'steady load at the right size: keep, with the figures',
    element: el(2, spread(2, 0, 60, flat(120))), now: 60,
    expect: { action: 'keep', to: 2, reason: 'mid keeps 2: offered 120/s, true rate 100/s per instance; 2 run at 60 % busy' },
  },
  // a step up
  {
    name: 'step up: the offered rate doubles (150 → 300/s), saturated members still measure 100/s each: 2 → 4 at once',
    element: el(2, spread(2, 0, 45, step(150, 300, 40))), now: 45,
    expect: { action: 'scale', to: 4, reason: 'mid 2 → 4: offered 300/s, true rate 100/s per instance; 4 run at 75 % busy' },
  },
  {
    name: 'step up: two seconds of the new rate are not yet a majority of the window: keep',
    element: el(2, spread(2, 0, 42, step(150, 300, 40))), now: 42,
    expect: { action: 'keep', to: 2 },
  },
  {
    name: 'step up: three seconds are (the median of the last 5 s moves): 2 → 4',
    element: el(2, spread(2, 0, 43, step(150, 300, 40))), now: 43,
    expect: { action: 'scale', to: 4 },
  },
  {
    name: 'step up 100 → 800/s: 8 carry it at full speed, so at most 9 (DS2 at 80 % alone would say 10)',
    element: el(2, spread(2, 0, 45, step(100, 800, 40))), now: 45,
    expect: { action: 'scale', to: 9, reason: /2 → 9: offered 800\/s, true rate 100\/s per instance; 9 run at 89 % busy$/ },
  },
  {
    name: 'step up 100 → 800/s with maxSpare Infinity: DS2 alone, 10',
    element: el(2, spread(2, 0, 45, step(100, 800, 40))), now: 45, options: { maxSpare: Infinity },
    expect: { action: 'scale', to: 10 },
  },
  {
    name: 'a target utilisation of 0.5: 300/s needs 6',
    element: el(2, spread(2, 0, 45, step(150, 300, 40))), now: 45, options: { targetUtilisation: 0.5, maxSpare: Infinity },
    expect: { action: 'scale', to: 6 },
  },
  // a step down, later for a higher cost
  {
    name: 'step down (300 → 100/s), cost 0: 20 s into the lull of 30 s: keep',
    element: el(4, spread(4, 0, 120, step(300, 100, 100))), now: 120,
    expect: { action: 'keep', to: 4, reason: 'mid keeps 4: offered 100/s, true rate 100/s per instance; 2 would do, but it shrinks only after a lull of 30 s (cost 0), 20 s so far (before that, offered 300/s 20 s ago)' },
  },
  {
    name: 'step down, cost 0: after 30 s of lull: 4 → 2',
    element: el(4, spread(4, 0, 130, step(300, 100, 100))), now: 130,
    expect: { action: 'scale', to: 2, reason: 'mid 4 → 2: offered at most 100/s for 30 s (cost 0), now 100/s, true rate 100/s per instance; 2 run at 50 % busy at that peak' },
  },
  {
    name: 'step down, cost 1: 30 s is not enough (lull 60 s): keep',
    element: el(4, spread(4, 0, 130, step(300, 100, 100)), { cost: 1 }), now: 130,
    expect: { action: 'keep', to: 4, reason: /shrinks only after a lull of 60 s \(cost 1\), 30 s so far/ },
  },
  {
    name: 'step down, cost 1: after 60 s: 4 → 2',
    element: el(4, spread(4, 0, 160, step(300, 100, 100)), { cost: 1 }), now: 160,
    expect: { action: 'scale', to: 2 },
  },
  {
    name: 'step down, cost 3: 60 s is not enough (lull 120 s): keep',
    element: el(4, spread(4, 0, 160, step(300, 100, 100)), { cost: 3 }), now: 160,
    expect: { action: 'keep', to: 4 },
  },
  {
    name: 'step down, cost 3: after 120 s: 4 → 2',
    element: el(4, spread(4, 0, 220, step(300, 100, 100)), { cost: 3 }), now: 220,
    expect: { action: 'scale', to: 2 },
  },
  {
    name: 'dead band: 4 members at 235/s; 3 would carry it (78 % busy), but 235 + 10 % needs 4: keep',
    element: el(4, spread(4, 0, 200, flat(235))), now: 200,
    expect: { action: 'keep', to: 4, reason: 'mid keeps 4: offered 235/s, true rate 100/s per instance; 4 run at 59 % busy; 3 run at 78 % busy, inside the 10 % dead band' },
  },
  {
    name: 'dead band: 5 members at 230/s: the size for 230/s is 3, but 253/s needs 4: a shrink goes to 4',
    element: el(5, spread(5, 0, 200, flat(230))), now: 200,
    expect: { action: 'scale', to: 4 },
  },
  {
    name: 'a lull whose queues still hold more than 2 s of work: keep',
    element: el(4, spread(4, 0, 135, step(520, 100, 100))), now: 135,
    expect: { action: 'keep', to: 4, reason: 'mid keeps 4: offered 100/s, true rate 100/s per instance; 2 would do, but it shrinks only after a lull of 30 s (cost 0), not begun: its queues held 2220 logs in the last 5 s (more than 2 s of work)' },
  },
  {
    name: 'once the queues have drained, the lull counts: 4 → 2',
    element: el(4, spread(4, 0, 170, step(520, 100, 100))), now: 170,
    expect: { action: 'scale', to: 2 },
  },
  // settling
  {
    name: 'settling: inside the warm-up after a change, no decision whatever the figures say',
    element: el(2, spread(2, 0, 45, flat(600)), { lastChange: 40 * S }), now: 45,
    expect: { action: 'keep', to: 2, reason: 'mid keeps 2: settling after the change 5 s ago; figures count after a 10 s warm-up' },
  },
  {
    name: 'settling: warm-up over but only 2 readings since: keep',
    element: el(2, spread(2, 0, 51, flat(600)), { lastChange: 40 * S }), now: 51,
    expect: { action: 'keep', to: 2, reason: 'mid keeps 2: too few figures: at most 2 readings of a member in the last 5 s, 3 needed' },
  },
  {
    name: 'settling: 3 readings after the warm-up: decide (600/s: 7)',
    element: el(2, spread(2, 0, 52, flat(600)), { lastChange: 40 * S }), now: 52,
    expect: { action: 'scale', to: 7 },
  },
  {
    name: 'no shrink right after a growth: grown at 40 s, load gone at 41 s; 79 s: the lull reaches back before the warm-up ended',
    element: el(4, spread(4, 40, 79, step(300, 100, 40)), { lastChange: 40 * S }), now: 79,
    expect: { action: 'keep', to: 4, reason: /25 s so far \(before that, the change to 4 settled 29 s ago\)/ },
  },
  {
    name: 'no shrink right after a growth: at warm-up + lull (80 s): 4 → 2',
    element: el(4, spread(4, 40, 80, step(300, 100, 40)), { lastChange: 40 * S }), now: 80,
    expect: { action: 'scale', to: 2 },
  },
  // min and max
  {
    name: 'max clamps: 1000/s needs 11, the shard stops at 4',
    element: el(2, spread(2, 0, 45, flat(1000)), { max: 4 }), now: 45,
    expect: { action: 'scale', to: 4, reason: /; 4 run at 250 % busy; 11 needed, but its shard's max is 4$/ },
  },
  {
    name: 'max clamps: at the max already: keep, saying so',
    element: el(4, spread(4, 0, 45, flat(1000)), { max: 4 }), now: 45,
    expect: { action: 'keep', to: 4, reason: /11 needed, but its shard's max is 4$/ },
  },
  {
    name: 'min clamps: an idle element shrinks to its min after the lull, not to 0',
    element: el(4, spread(4, 0, 60, flat(0)), { min: 2 }), now: 60,
    expect: { action: 'scale', to: 2, reason: /true rate unknown \(nothing processed\); 2 run at 0 % busy/ },
  },
  {
    name: 'min clamps: at the min, idle: keep',
    element: el(2, spread(2, 0, 60, flat(0)), { min: 2 }), now: 60,
    expect: { action: 'keep', to: 2 },
  },
  {
    name: 'a size above max (max lowered): to max at once, figures or not',
    element: el(6, [], { max: 4 }), now: 10,
    expect: { action: 'scale', to: 4, reason: "mid 6 → 4: outside its shard's 1..4" },
  },
  {
    name: 'a size below min: to min at once, even while settling',
    element: el(1, [], { min: 3, lastChange: 9 * S }), now: 10,
    expect: { action: 'scale', to: 3 },
  },
  // no samples, unknown rates
  {
    name: 'no samples at all: keep',
    element: el(3, []), now: 100,
    expect: { action: 'keep', to: 3, reason: 'mid keeps 3: no figures yet' },
  },
  {
    name: 'only samples from before the change: keep',
    element: el(3, spread(3, 0, 50, flat(900)), { lastChange: 60 * S }), now: 100,
    expect: { action: 'keep', to: 3, reason: 'mid keeps 3: no figures since the change settled yet' },
  },
  {
    name: 'samples that stopped long ago: keep',
    element: el(3, spread(3, 0, 50, flat(900))), now: 100,
    expect: { action: 'keep', to: 3, reason: /too few figures: at most 0 readings/ },
  },
  {
    name: 'logs offered but none processed (a hung element): its rate is unknown, keep',
    element: el(2, spread(2, 0, 60, flat(200), { capacity: 0 })), now: 60,
    expect: { action: 'keep', to: 2, reason: 'mid keeps 2: offered 200/s, true rate unknown (nothing processed): nothing processed in the last 30 s, so its true rate is unknown' },
  },
  {
    name: 'readings later than now are ignored',
    element: el(2, spread(2, 0, 80, step(150, 900, 60))), now: 60,
    expect: { action: 'keep', to: 2 },
  },
];

for (const c of cases) {
  test(`autoscale: ${c.name}`, (t) => {
    const d = decide(c.element, c.now, c.options);
    t.is(d.element, 'mid');
    t.is(d.from, c.element.size);
    t.deepEqual({ action: d.action, to: d.to }, { action: c.expect.action, to: c.expect.to }, d.reason);
    if (typeof c.expect.reason === 'string') t.is(d.reason, c.expect.reason);
    else if (c.expect.reason) t.regex(d.reason, c.expect.reason);
  });
}

test('autoscale: a step up (doubling) is one decision to the right size, never more than the smallest carrying size + 1', (t) => {
  const samples = spread(2, 0, 70, step(150, 300, 40));
  const sizes: number[] = [];
  for (let now = 35; now <= 70; now++) {
    const d = decide(el(2, samples), now);
    if (d.action === 'scale') sizes.push(d.to);
  }
  // Every call from 43 s on sees the same: 4 (300/s ÷ 100/s = 3 at full speed, DS2 at 80 %: 4).
  t.true(sizes.every((n) => n === 4));
  t.is(sizes.length, 70 - 43 + 1);
  t.true(4 <= Math.ceil(300 / C) + 1);
});

test('autoscale: noise of ±10 % around a steady 200/s at 3 members: no change in 150 decisions', (t) => {
  const n = noise(7);
  const busyNoise = noise(11);
  const samples = spread(3, 0, 200, (tt) => 200 * (1 + 0.1 * n(tt)), { busyNoise: (tt) => 1 + 0.05 * busyNoise(tt) });
  for (let now = 50; now <= 200; now++) {
    const d = decide(el(3, samples), now);
    if (d.action !== 'keep') t.fail(`${now} s: ${d.reason}`);
  }
  t.pass();
});

test('autoscale: noise right at a boundary (80/s ± 5 % for one member): it grows once to 2, then stays', (t) => {
  const n = noise(3);
  let size = 1;
  let lastChange: number | undefined;
  const members = () => Array.from({ length: size }, (_, i) => `${i + 1}`);
  const samples: MetricSample[] = [];
  const counters = new Map<string, { processed: number; busy: number }>();
  const changes: string[] = [];
  for (let tt = 0; tt <= 600; tt++) {
    const total = 80 * (1 + 0.05 * n(tt));
    for (const m of members()) {
      const c = counters.get(m) ?? { processed: 0, busy: 0 };
      c.processed += total / size;
      c.busy += total / size / C;
      counters.set(m, c);
      samples.push({ member: m, at: tt * S, processed: c.processed, busySeconds: c.busy, offeredPerSecond: total / size, queueDepth: 0 });
    }
    const d = decide(el(size, samples.filter((s) => s.at > (tt - 120) * S), { lastChange }), tt);
    if (d.action === 'scale') {
      changes.push(`${tt}: ${d.from} → ${d.to}`);
      size = d.to;
      lastChange = tt * S;
    }
  }
  t.is(changes.length, 1, changes.join('; '));
  t.is(size, 2);
});

// A member that crashes mid-way: its readings stop for a while, then come back from a new
// instance (counters from 0, a burst of what waited for it). Neither variant may move the size.
const takesAll = (t: number) => (t > 50 && t <= 55 ? 150 : 75);
const crashCases: { name: string; survivor: (t: number) => number; incarnation: boolean }[] = [
  { name: 'hash-sharded: the survivor keeps its own share', survivor: flat(75), incarnation: true },
  { name: 'round-robin: the survivor takes the whole load meanwhile (saturated, queueing)', survivor: takesAll, incarnation: true },
  { name: 'round-robin, no incarnation: the reset shows only as counters going back', survivor: takesAll, incarnation: false },
];

for (const c of crashCases) {
  test(`autoscale: a member that crashes mid-way does not move the size (${c.name})`, (t) => {
    const survivor = member('1', 0, 120, c.survivor);
    const before = member('2', 0, 50, flat(75), c.incarnation ? { incarnation: 'a' } : {});
    // Back at 56 s from a new instance: its first reading is a burst (what waited), then its share.
    const after = member('2', 56, 120, (tt) => (tt === 56 ? 400 : 75), c.incarnation ? { incarnation: 'b' } : {});
    const samples = [...survivor, ...before, ...after];
    for (let now = 40; now <= 120; now++) {
      const d = decide(el(2, samples), now);
      if (d.action !== 'keep') t.fail(`${now} s: ${d.reason}`);
    }
    // While it is gone, the line says the figures come from one member.
    t.regex(decide(el(2, samples), 54).reason, /\(from 1 of 2 members\)/);
    t.pass();
  });
}

test('autoscale: a member gone for good blocks shrinking: only a complete lull counts', (t) => {
  // 4 members at 300/s; member 4 dies at 100 s while the load drops to 100/s.
  const samples = [
    ...spread(3, 0, 300, step(225, 75, 100)),
    ...member('4', 0, 100, flat(75)),
  ];
  const d = decide(el(4, samples), 200);
  t.is(d.action, 'keep');
  t.is(d.reason, 'mid keeps 4: offered 75/s (from 3 of 4 members), true rate 100/s per instance; 2 would do, but it does not shrink on figures from 3 of 4 members');
});

test('autoscale: a member back for a few seconds only: the lull counts from when every member reported in a slice', (t) => {
  // 4 members, load down to 100/s at 100 s; member 4 silent from 110 s to 125 s, then back.
  const samples = [
    ...spread(3, 0, 200, step(225, 75, 100)),
    ...member('4', 0, 110, step(75, 25, 100)),
    ...member('4', 126, 200, flat(25), { incarnation: 'again' }),
  ];
  const early = decide(el(4, samples), 150);
  t.is(early.action, 'keep');
  t.regex(early.reason, /25 s so far \(before that, figures from only 3 of 4 members 25 s ago\)$/);
  t.like(decide(el(4, samples), 156), { action: 'scale', to: 2 });
});

test('autoscale: impossible readings (NaN, below 0, busy beyond wall time) are ignored, not believed', (t) => {
  const good = spread(2, 0, 60, flat(120));
  const bad: MetricSample[] = [
    { member: '1', at: 58_500, processed: Number.NaN, busySeconds: 1, offeredPerSecond: 5000, queueDepth: 0 },
    { member: '2', at: 58_500, processed: 10, busySeconds: -1, offeredPerSecond: 5000, queueDepth: 0 },
    { member: '3', at: 59_500, processed: 1e9, busySeconds: 0, offeredPerSecond: -3, queueDepth: 0 },
  ];
  // Member 2 claims 500 busy seconds in one second: that pair is skipped.
  const liar = good.map((s) => (s.member === '2' && s.at === 60_000 ? { ...s, busySeconds: s.busySeconds + 500 } : s));
  const d = decide(el(2, [...liar, ...bad]), 60);
  t.is(d.action, 'keep');
  t.is(d.offered, 120);
  t.true(Math.abs(d.ratePerInstance! - 100) < 1e-9, `${d.ratePerInstance}`);
});

test('autoscale: the cap binds: growth shared one instance at a time to the busiest, and the line says so', (t) => {
  const a = { ...el(2, spread(2, 0, 45, flat(300))), element: 'a' }; // wants 4
  const b = { ...el(2, spread(2, 0, 45, flat(450))), element: 'b' }; // wants 6
  const ds = autoscaleDecisions({ now: 45 * S, elements: [a, b], cap: 8, others: 1 });
  // Room: 8 - 1 - 2 - 2 = 3. b (225 %) → 3; a and b at 150 %: a first by name → 3; b (150 %) → 4.
  t.deepEqual(ds.map((d) => [d.element, d.action, d.to, d.wanted, d.capBound]), [['a', 'scale', 3, 4, true], ['b', 'scale', 4, 6, true]]);
  t.is(ds[0]!.reason, "a 2 → 3: offered 300/s, true rate 100/s per instance; 3 run at 100 % busy; 4 wanted, but the stack's cap of 8 element instances binds");
  t.regex(ds[1]!.reason, /^b 2 → 4: .*; 6 wanted, but the stack's cap of 8 element instances binds$/);
  t.is(ds.reduce((n, d) => n + d.to, 1), 8);
});

test('autoscale: the cap is shared the same whatever the order of the elements', (t) => {
  const a = { ...el(2, spread(2, 0, 45, flat(300))), element: 'a' };
  const b = { ...el(2, spread(2, 0, 45, flat(300))), element: 'b' };
  const c = { ...el(2, spread(2, 0, 45, flat(300))), element: 'c' };
  const forward = autoscaleDecisions({ now: 45 * S, elements: [a, b, c], cap: 8 });
  const backward = autoscaleDecisions({ now: 45 * S, elements: [c, b, a], cap: 8 });
  t.deepEqual(backward.map((d) => d.element), ['c', 'b', 'a']);
  t.deepEqual([...backward].reverse(), forward);
  // Room 2 among three equals: the first two by name get one each.
  t.deepEqual(forward.map((d) => d.to), [3, 3, 2]);
  t.is(forward[2]!.action, 'keep');
  t.regex(forward[2]!.reason, /^c keeps 2: .*; 2 run at 150 % busy; 4 wanted, but the stack's cap of 8 element instances binds$/);
});

test('autoscale: a cap already full: growth is held, the element keeps its size and says why', (t) => {
  const a = { ...el(2, spread(2, 0, 45, flat(300))), element: 'a' };
  const [d] = autoscaleDecisions({ now: 45 * S, elements: [a], cap: 5, others: 3 });
  t.like(d, { action: 'keep', to: 2, wanted: 4, capBound: true });
});

test('autoscale: a shrink in the same round makes room for a growth', (t) => {
  const grow = { ...el(2, spread(2, 0, 130, flat(300))), element: 'grow' };
  const shrink = { ...el(4, spread(4, 0, 130, step(300, 100, 100))), element: 'shrink' };
  const ds = autoscaleDecisions({ now: 130 * S, elements: [grow, shrink], cap: 6 });
  t.deepEqual(ds.map((d) => [d.element, d.to, d.capBound ?? false]), [['grow', 4, false], ['shrink', 2, false]]);
});

test('autoscale: no cap: every growth is made', (t) => {
  const a = { ...el(2, spread(2, 0, 45, flat(900))), element: 'a' };
  t.like(autoscaleDecisions({ now: 45 * S, elements: [a] })[0], { action: 'scale', to: 10, capBound: undefined });
});

test('autoscale: the same input gives the same decisions', (t) => {
  const input = { now: 130 * S, elements: [el(4, spread(4, 0, 130, step(300, 100, 100)))], cap: 20 };
  t.deepEqual(autoscaleDecisions(input), autoscaleDecisions(structuredClone(input)));
});

const lulls: [number, number][] = [[0, 30_000], [0.5, 45_000], [1, 60_000], [3, 120_000], [19, 600_000], [100, 600_000], [-1, 30_000], [Number.NaN, 30_000]];
for (const [cost, ms] of lulls) {
  test(`shrinkLullMs: cost ${cost} waits ${ms / 1000} s`, (t) => {
    t.is(shrinkLullMs(cost), ms);
  });
}

test('autoscale: DEFAULT_AUTOSCALE holds the documented numbers', (t) => {
  t.deepEqual({ ...DEFAULT_AUTOSCALE }, {
    targetUtilisation: 0.8, maxSpare: 1, warmupMs: 10_000, windowMs: 5_000, minSamples: 3, rateWindowMs: 30_000,
    lullMs: 30_000, maxLullMs: 600_000, deadBand: 0.1, backlogSeconds: 2,
  });
});

const refusals: { name: string; run: () => unknown; message: RegExp }[] = [
  { name: 'an element given twice', run: () => autoscaleDecisions({ now: 0, elements: [el(1, []), el(1, [])] }), message: /element 'mid' is given twice/ },
  { name: 'min above max', run: () => autoscaleDecisions({ now: 0, elements: [el(1, [], { min: 3, max: 2 })] }), message: /0 ≤ min ≤ max/ },
  { name: 'a size that is not whole', run: () => autoscaleDecisions({ now: 0, elements: [el(1.5, [])] }), message: /size must be a whole number/ },
  { name: 'a cap below 0', run: () => autoscaleDecisions({ now: 0, elements: [], cap: -1 }), message: /cap must be/ },
  { name: 'now not a number', run: () => autoscaleDecisions({ now: Number.NaN, elements: [] }), message: /now must be/ },
  { name: 'a target utilisation above 1', run: () => autoscaleDecisions({ now: 0, elements: [] }, { targetUtilisation: 1.5 }), message: /targetUtilisation/ },
  { name: 'minSamples 1', run: () => autoscaleDecisions({ now: 0, elements: [] }, { minSamples: 1 }), message: /minSamples/ },
];
for (const r of refusals) {
  test(`autoscale refuses ${r.name}`, (t) => {
    const err = t.throws(r.run, { instanceOf: AutoscaleError, message: r.message });
    t.is(err?.name, 'AutoscaleError');
  });
}

/**
 * A pipeline's slow middle element under a step change, one second at a time: its members
 * each process at most C logs/s, queue the rest, and report counters and gauges; the
 * controller decides every second and a decision takes effect at once (new members start
 * with counters at 0; removed members stop reporting).
 */
function simulate(load: (t: number) => number, seconds: number, start: number, o: { cost?: number; max?: number; noiseSeed?: number } = {}) {
  const n = o.noiseSeed === undefined ? () => 0 : noise(o.noiseSeed);
  let size = start;
  let lastChange: number | undefined;
  const state = new Map<string, { processed: number; busy: number; queue: number }>();
  const samples: MetricSample[] = [];
  const decisions: { t: number; from: number; to: number; reason: string }[] = [];
  const sizes: number[] = [];
  let carried = 0;
  let offeredTotal = 0;
  for (let t = 0; t <= seconds; t++) {
    const total = load(t) * (1 + 0.03 * n(t));
    for (let i = 1; i <= size; i++) {
      const id = `${i}`;
      const s = state.get(id) ?? { processed: 0, busy: 0, queue: 0 };
      const share = total / size;
      const done = Math.min(C, share + s.queue);
      s.queue += share - done;
      s.processed += done;
      s.busy += done / C;
      state.set(id, s);
      samples.push({ member: id, at: t * S, processed: s.processed, busySeconds: s.busy, offeredPerSecond: share, queueDepth: s.queue });
      if (t > seconds - 60) carried += done;
    }
    if (t > seconds - 60) offeredTotal += total;
    const recent = samples.filter((s) => s.at > (t - 700) * S);
    const d = decide(el(size, recent, { lastChange, cost: o.cost ?? 0, max: o.max ?? 20 }), t);
    if (d.action === 'scale') {
      decisions.push({ t, from: d.from, to: d.to, reason: d.reason });
      for (let i = d.to + 1; i <= size; i++) state.delete(`${i}`);
      size = d.to;
      lastChange = t * S;
    }
    sizes.push(size);
  }
  return { decisions, sizes, throughputRatio: carried / offeredTotal };
}

const sims: { name: string; load: (t: number) => number; start: number; at: number; optimal: number; cost?: number; noiseSeed?: number }[] = [
  { name: 'up: 120 → 450/s at 100 s', load: step(120, 450, 100), start: 2, at: 100, optimal: 6 },
  { name: 'up, with 3 % noise', load: step(120, 450, 100), start: 2, at: 100, optimal: 6, noiseSeed: 5 },
  { name: 'up tenfold: 100 → 1000/s', load: step(100, 1000, 100), start: 2, at: 100, optimal: 11 },
  { name: 'down: 450 → 120/s at 100 s, cost 0', load: step(450, 120, 100), start: 6, at: 100, optimal: 2, cost: 0 },
  { name: 'down: 450 → 120/s, cost 2 (a 90 s lull)', load: step(450, 120, 100), start: 6, at: 100, optimal: 2, cost: 2 },
];

for (const c of sims) {
  test(`autoscale simulation: ${c.name}: the DS2 size in ≤ 2 decisions, and it stays`, (t) => {
    const { decisions, sizes, throughputRatio } = simulate(c.load, 600, c.start, { cost: c.cost, noiseSeed: c.noiseSeed });
    const after = decisions.filter((d) => d.t > c.at);
    t.true(decisions.every((d) => d.t > c.at), 'nothing moves before the step');
    t.true(after.length >= 1 && after.length <= 2, after.map((d) => `${d.t}: ${d.reason}`).join('\n'));
    t.is(sizes[sizes.length - 1], c.optimal);
    const reached = after[after.length - 1]!.t;
    t.true(sizes.slice(reached).every((n) => n === c.optimal), 'it stays');
    // Growing: never more than the smallest size that carries the rate, plus one; shrinking:
    // never below the size it settles at.
    const after_ = sizes.slice(c.at + 1);
    if (c.load(c.at + 1) > c.load(c.at)) t.true(Math.max(...after_) <= Math.ceil(c.load(c.at + 1) / C) + 1);
    else t.true(Math.min(...after_) >= c.optimal);
    t.true(throughputRatio >= 0.95, `carried ${throughputRatio}`);
    // A lull is judged in 5 s slices by their medians: it may begin up to half a slice early.
    if (c.cost !== undefined) t.true(reached - c.at >= shrinkLullMs(c.cost) / 1000 - 2.5, `shrank after ${reached - c.at} s`);
  });
}
