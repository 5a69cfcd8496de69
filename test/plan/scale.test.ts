// Scale requests and scales a plan must end with: tables of (request, what runs) → faults or
// instructions, and of (plan, what runs, scales) → the plan that ends with those scales.
// Pure: no docker, no etcd, no disk.
import test from 'ava';
import {
  applyPlan, diffPlan, scaleFaults, scaleInstructions, scalesOf, withScales, type CurrentState, type Instruction,
} from '../../plan/index.js';
import { base, compile, stackWith } from '../compiler/fixture.js';

/** Any key: these plans are compared only with themselves. */
const KEY = { digestKey: 'a test digest key' };

const q = base['quarry.yml']!;
const topo = base['topology.yml']!;
const spec = compile(base);

/** `OP target`, with a DEPLOY's scale and a SCALE's counts: `DEPLOY node web ×3`, `SCALE element mid 1→3`. */
function summary(steps: Instruction[]): string[] {
  return steps.map((s) => {
    const target = 'element' in s && s.element !== undefined ? `element ${s.element}` : `node ${(s as { node: string }).node}`;
    if (s.op === 'SCALE') return `SCALE ${target} ${s.from}→${s.to}`;
    if (s.op === 'DEPLOY') return `DEPLOY ${target} ×${s.scale}`;
    if (s.op === 'ROUTE') return `ROUTE ${target} [${s.domains.join(' ')}]`;
    return `${s.op} ${target}`;
  });
}

/** What runs after the base stack's first push (every node and element at 1). */
function deployedBase(): CurrentState {
  return applyPlan(spec, undefined, diffPlan(spec, undefined, KEY).instructions);
}

function running(scales: Record<string, number>): CurrentState {
  const state = deployedBase();
  for (const unit of state.units) if (scales[unit.name] !== undefined) unit.scale = scales[unit.name]!;
  return state;
}

// ---- scaleFaults: the request checked against the stack, faults word for word ----

const faultCases: { name: string; changes: Record<string, number>; faults: string[] }[] = [
  { name: 'a node scaled up', changes: { web: 3 }, faults: [] },
  { name: 'a node scaled to nothing', changes: { web: 0 }, faults: [] },
  { name: 'to 100, the most', changes: { web: 100, src: 5 }, faults: [] },
  { name: 'a shard within its min and max', changes: { mid: 3 }, faults: [] },
  { name: 'an empty request', changes: {}, faults: ['say what to scale: NAME=N'] },
  {
    name: 'an unknown name, with the names the stack has',
    changes: { nope: 2 },
    faults: ['no node or element \'nope\' in demo (it has db, sink, mid, src, web)'],
  },
  { name: 'a service', changes: { db: 2 }, faults: ['\'db\' is a service: it runs one container'] },
  { name: 'not a whole number', changes: { web: 1.5 }, faults: ['web=1.5: a whole number from 0 to 100 is required'] },
  { name: 'below 0', changes: { web: -1 }, faults: ['web=-1: a whole number from 0 to 100 is required'] },
  { name: 'above 100', changes: { sink: 101 }, faults: ['sink=101: a whole number from 0 to 100 is required'] },
  { name: 'not a number', changes: { web: Number.NaN }, faults: ['web=NaN: a whole number from 0 to 100 is required'] },
  { name: 'a shard above its max', changes: { mid: 4 }, faults: ['mid=4: its shard runs 1 to 3 members'] },
  { name: 'a shard below its min', changes: { mid: 0 }, faults: ['mid=0: its shard runs 1 to 3 members'] },
  { name: 'a shard out of 0..100 is told the range first', changes: { mid: 200 }, faults: ['mid=200: a whole number from 0 to 100 is required'] },
  {
    name: 'every fault, in the order asked, the good ones not mentioned',
    changes: { nope: 1, web: 2, db: 2, sink: 2.5, mid: 9 },
    faults: [
      'no node or element \'nope\' in demo (it has db, sink, mid, src, web)',
      '\'db\' is a service: it runs one container',
      'sink=2.5: a whole number from 0 to 100 is required',
      'mid=9: its shard runs 1 to 3 members',
    ],
  },
];

for (const c of faultCases) {
  test(`scaleFaults: ${c.name}`, (t) => {
    t.deepEqual(scaleFaults(spec, c.changes), c.faults);
  });
}

// ---- scaleInstructions: a SCALE for each count that changes, from what runs ----

const planCases: { name: string; changes: Record<string, number>; current?: CurrentState | 'none'; expect: string[] }[] = [
  { name: 'a node up', changes: { web: 3 }, expect: ['SCALE node web 1→3'] },
  { name: 'an element up', changes: { sink: 2 }, expect: ['SCALE element sink 1→2'] },
  { name: 'to the count it runs: nothing', changes: { web: 1 }, expect: [] },
  { name: 'from what runs, not from quarry.yml', changes: { web: 2 }, current: running({ web: 5 }), expect: ['SCALE node web 5→2'] },
  { name: 'a count set earlier, asked again: nothing', changes: { web: 5 }, current: running({ web: 5 }), expect: [] },
  { name: 'down to nothing', changes: { web: 0, src: 0 }, expect: ['SCALE node web 1→0', 'SCALE element src 1→0'] },
  { name: 'several, in the order asked', changes: { web: 2, sink: 3, mid: 1 }, expect: ['SCALE node web 1→2', 'SCALE element sink 1→3'] },
  { name: 'nothing runs yet: from the stack\'s own scale', changes: { web: 2 }, current: 'none', expect: ['SCALE node web 1→2'] },
  {
    name: 'a unit not running: from the stack\'s own scale',
    changes: { mid: 2 },
    current: { stack: 'demo', units: deployedBase().units.filter((u) => u.name !== 'mid') },
    expect: ['SCALE element mid 1→2'],
  },
  { name: 'names that are not nodes or elements are skipped', changes: { nope: 2, db: 3, web: 2 }, expect: ['SCALE node web 1→2'] },
];

for (const c of planCases) {
  test(`scaleInstructions: ${c.name}`, (t) => {
    const current = c.current === 'none' ? undefined : (c.current ?? deployedBase());
    t.deepEqual(summary(scaleInstructions(spec, current, c.changes)), c.expect);
  });
}

test('scaleInstructions: whole instructions, named by node or element, of the stack', (t) => {
  t.deepEqual(scaleInstructions(spec, deployedBase(), { web: 3, sink: 2 }), [
    { op: 'SCALE', stack: 'demo', node: 'web', from: 1, to: 3 },
    { op: 'SCALE', stack: 'demo', element: 'sink', from: 1, to: 2 },
  ]);
});

test('scaleInstructions, applied, runs what was asked', (t) => {
  const before = deployedBase();
  const after = applyPlan(spec, before, scaleInstructions(spec, before, { web: 4, mid: 2 }));
  t.like(scalesOf(after), { web: 4, mid: 2, sink: 1, src: 1, db: 1 });
});

test('scalesOf: each unit\'s count, services included', (t) => {
  t.deepEqual(scalesOf(running({ web: 3, mid: 2 })), { db: 1, sink: 1, mid: 2, src: 1, web: 3 });
  t.deepEqual(scalesOf({ stack: 'demo', units: [] }), {});
});

// ---- withScales: the plan that ends with given scales (rollback) ----

interface ScalesCase {
  name: string;
  /** The stack the plan goes to (base with these files changed). */
  after?: Record<string, string | null>;
  /** What runs before, as counts changed from the base's first push. */
  running?: Record<string, number>;
  scales: Record<string, number>;
  /** The plan the diff gives, before scales are fixed (so that the table shows both). */
  plan: string[];
  expect: string[];
}

const scalesCases: ScalesCase[] = [
  { name: 'nothing to do, scales as they run: nothing', scales: { db: 1, web: 1, mid: 1 }, plan: [], expect: [] },
  {
    name: 'a DEPLOY takes the scale',
    after: { 'web/server.js': 'console.log("web v2")\n' },
    scales: { web: 3 },
    plan: ['DEPLOY node web ×1'],
    expect: ['DEPLOY node web ×3'],
  },
  {
    name: 'a SCALE is retargeted',
    after: { 'quarry.yml': q.replace('    health: /healthz\n', '    health: /healthz\n    scale: 3\n') },
    scales: { web: 2 },
    plan: ['SCALE node web 1→3'],
    expect: ['SCALE node web 1→2'],
  },
  {
    name: 'a SCALE that then changes nothing is dropped',
    after: { 'quarry.yml': q.replace('    health: /healthz\n', '    health: /healthz\n    scale: 3\n') },
    scales: { web: 1 },
    plan: ['SCALE node web 1→3'],
    expect: [],
  },
  {
    name: 'a unit the plan leaves alone gets a SCALE, after the plan\'s own steps',
    after: { 'web/server.js': 'console.log("web v2")\n' },
    running: { sink: 3 },
    scales: { web: 1, sink: 1, mid: 2, src: 1 },
    plan: ['DEPLOY node web ×1'],
    expect: ['DEPLOY node web ×1', 'SCALE element sink 3→1', 'SCALE element mid 1→2'],
  },
  {
    name: 'a unit already at its scale, or not named, is left alone',
    running: { web: 4, sink: 2 },
    scales: { sink: 2 },
    plan: [],
    expect: [],
  },
  { name: 'a service is never scaled', scales: { db: 3 }, plan: [], expect: [] },
  {
    name: 'KILLs stay last, and a unit killed gets no SCALE',
    after: { 'topology.yml': topo.replace('  - src.out -> mid.in\n', '').replace('  src:\n    class: source\n', '') },
    scales: { mid: 2, src: 3, sink: 2 },
    plan: ['DEPLOY element mid ×1', 'KILL element src'],
    expect: ['DEPLOY element mid ×2', 'SCALE element sink 1→2', 'KILL element src'],
  },
];

for (const c of scalesCases) {
  test(`withScales: ${c.name}`, (t) => {
    const current = running(c.running ?? {});
    const stack = compile(stackWith(c.after ?? {}));
    const diff = diffPlan(stack, current, KEY).instructions;
    t.deepEqual(summary(diff), c.plan, 'the plan before');
    const before = structuredClone(diff);
    const fixed = withScales(diff, current, c.scales, 'demo');
    t.deepEqual(summary(fixed), c.expect);
    t.deepEqual(diff, before, 'the plan given is left as it is');
    // Applied, the plan runs the scales asked for (units it kills aside).
    const after = scalesOf(applyPlan(stack, current, fixed));
    const killed = new Set(fixed.filter((s) => s.op === 'KILL').map((s) => s.node ?? s.element));
    for (const [name, want] of Object.entries(c.scales)) {
      const unit = current.units.find((u) => u.name === name);
      if (unit && unit.kind !== 'service' && !killed.has(name)) t.is(after[name], want, `${name} ends at ${want}`);
    }
  });
}

test('withScales: with nothing running, only the plan\'s own steps are retargeted', (t) => {
  const plan = diffPlan(spec, undefined, KEY).instructions;
  t.deepEqual(summary(withScales(plan, undefined, { web: 2, sink: 3 }, 'demo')), [
    'ENSURE node db', 'DEPLOY element sink ×3', 'DEPLOY element mid ×1', 'DEPLOY element src ×1', 'DEPLOY node web ×2',
    'ROUTE node web [demo.example.com]',
  ]);
});

test('withScales: an added SCALE is of the stack named', (t) => {
  t.deepEqual(withScales([], running({}), { web: 2 }, 'demo'), [{ op: 'SCALE', stack: 'demo', node: 'web', from: 1, to: 2 }]);
});

test('withScales: a KILL inside the plan (a unit that changed kind) keeps its place; the trailing KILLs stay last', (t) => {
  const plan: Instruction[] = [
    { op: 'KILL', stack: 'demo', node: 'db', kind: 'service' },
    { op: 'DEPLOY', stack: 'demo', node: 'db', kind: 'worker', image: 'db:2', memory: 128, scale: 1, env: {}, digest: 'd2' },
    { op: 'KILL', stack: 'demo', element: 'src', kind: 'element' },
  ];
  t.deepEqual(summary(withScales(plan, running({}), { db: 2, sink: 3 }, 'demo')), [
    'KILL node db', 'DEPLOY node db ×2', 'SCALE element sink 1→3', 'KILL element src',
  ]);
});
