// The plan as a diff of what a stack asks for against what runs: a table of
// (stack before, stack after, what runs) → instructions, and the law that a plan, once
// applied, diffs to nothing.
import test from 'ava';
import { applyPlan, diffPlan, type CurrentState, type Instruction } from '../../plan/index.js';
import { base, compile, stackWith } from '../compiler/fixture.js';

/** Any key: these plans are compared only with themselves. */
const KEY = { digestKey: 'a test digest key' };

const q = base['quarry.yml']!;
const topo = base['topology.yml']!;

/** `OP target` for each instruction, e.g. `DEPLOY node web`, `SCALE element mid 1→3`. */
function summary(steps: Instruction[]): string[] {
  return steps.map((s) => {
    const target = 'element' in s && s.element !== undefined ? `element ${s.element}` : `node ${(s as { node: string }).node}`;
    if (s.op === 'SCALE') return `SCALE ${target} ${s.from}→${s.to}`;
    if (s.op === 'ROUTE') return `ROUTE ${target} [${s.domains.join(' ')}]`;
    return `${s.op} ${target}`;
  });
}

/** What runs after the base stack's first push. */
function deployedBase(): CurrentState {
  const stack = compile(base);
  return applyPlan(stack, undefined, diffPlan(stack, undefined, KEY).instructions);
}

interface Case {
  name: string;
  after: Record<string, string | null>;
  /** Changes made to what runs before the push (e.g. by `quarry scale`). */
  running?: (state: CurrentState) => void;
  replace?: string[];
  expect: string[];
  notice?: RegExp;
}

const cases: Case[] = [
  { name: 'nothing changed', after: {}, expect: [] },
  { name: 'one node\'s code changed', after: { 'web/server.js': 'console.log("web v2")\n' }, expect: ['DEPLOY node web'] },
  { name: 'an element class\'s code changed', after: { 'elements/mapper/index.js': 'export default { v: 2 }\n' }, expect: ['DEPLOY element mid'] },
  { name: 'an element\'s config changed', after: { 'topology.yml': topo.replace('    class: sink\n', '    class: sink\n    config: { depth: 2 }\n') }, expect: ['DEPLOY element sink'] },
  {
    name: 'scale changed',
    after: { 'quarry.yml': q.replace('    health: /healthz\n', '    health: /healthz\n    scale: 3\n') },
    expect: ['SCALE node web 1→3'],
  },
  {
    name: 'a domain changed',
    after: { 'quarry.yml': q.replace('domains: [demo.example.com]', 'domains: [demo.example.com, www.demo.example.com]') },
    expect: ['ROUTE node web [demo.example.com www.demo.example.com]'],
  },
  {
    name: 'a node removed',
    after: {
      'quarry.yml': q.replace('  db:\n    type: service\n    image: postgres:16\n    port: 5432\n', ''),
    },
    expect: ['KILL node db'],
  },
  {
    name: 'an element removed',
    after: { 'topology.yml': topo.replace('  - src.out -> mid.in\n', '').replace('  src:\n    class: source\n', '') },
    expect: ['DEPLOY element mid', 'KILL element src'],
  },
  {
    name: 'the stack env changed: every non-service unit, not the service',
    after: { 'quarry.yml': q.replace('MODE: test', 'MODE: prod') },
    expect: ['DEPLOY element sink', 'DEPLOY element mid', 'DEPLOY element src', 'DEPLOY node web'],
  },
  {
    name: 'a service changed: left running, with a notice',
    after: { 'quarry.yml': q.replace('postgres:16', 'postgres:17') },
    expect: [],
    notice: /service 'db' changed \(image postgres:16 → postgres:17\), but a push never restarts a service/,
  },
  {
    name: 'a service changed and its replacement asked for',
    after: { 'quarry.yml': q.replace('postgres:16', 'postgres:17') },
    replace: ['db'],
    expect: ['KILL node db', 'ENSURE node db'],
  },
  {
    name: 'a scale set by quarry scale stands while quarry.yml\'s does not change',
    after: { 'web/server.js': 'console.log("web v2")\n' },
    running: (state) => { state.units.find((u) => u.name === 'web')!.scale = 5; },
    expect: ['DEPLOY node web'],
    notice: /node 'web' keeps the 5 containers set by `quarry scale`/,
  },
  {
    name: 'quarry.yml\'s new scale wins over one set by quarry scale',
    after: { 'quarry.yml': q.replace('    health: /healthz\n', '    health: /healthz\n    scale: 2\n') },
    running: (state) => { state.units.find((u) => u.name === 'web')!.scale = 5; },
    expect: ['SCALE node web 5→2'],
  },
  {
    name: 'a load shard keeps its size, brought within a lower max',
    after: { 'topology.yml': topo.replace('max: 3', 'max: 2') },
    running: (state) => { state.units.find((u) => u.name === 'mid')!.scale = 3; },
    expect: ['SCALE element mid 3→2'],
  },
  {
    name: 'a worker made web: redeployed and routed',
    after: {},
    running: (state) => { Object.assign(state.units.find((u) => u.name === 'web')!, { kind: 'worker', domains: [] }); },
    expect: ['DEPLOY node web', 'ROUTE node web [demo.example.com]'],
  },
  {
    name: 'a service made a worker: killed, then deployed',
    after: { 'quarry.yml': q.replace('    type: service\n', '    type: worker\n').replace('    port: 5432\n', '') },
    expect: ['KILL node db', 'DEPLOY node db'],
  },
];

for (const c of cases) {
  test(c.name, (t) => {
    const running = deployedBase();
    c.running?.(running);
    const stack = compile(stackWith(c.after));
    const plan = diffPlan(stack, running, { ...KEY, replace: c.replace ?? [] });
    t.deepEqual(summary(plan.instructions), c.expect);
    if (c.notice) t.true(plan.notices.some((n) => c.notice!.test(n)), plan.notices.join('\n'));
    else t.deepEqual(plan.notices, []);
    // Applied, the plan leaves nothing to do (but the notices of what it deliberately left).
    const after = applyPlan(stack, running, plan.instructions);
    t.deepEqual(summary(diffPlan(stack, after, KEY).instructions), [], 'the same plan twice does nothing the second time');
  });
}

test('a first push: services first, elements consumers first, then nodes and their routes', (t) => {
  const plan = diffPlan(compile(base), undefined, KEY);
  t.deepEqual(summary(plan.instructions), [
    'ENSURE node db', 'DEPLOY element sink', 'DEPLOY element mid', 'DEPLOY element src', 'DEPLOY node web',
    'ROUTE node web [demo.example.com]',
  ]);
  for (const step of plan.instructions) t.is(step.stack, 'demo');
});

test('a build folder\'s tag is its content: same files, same image', (t) => {
  const a = diffPlan(compile(base), undefined, KEY).instructions.find((s) => s.op === 'DEPLOY' && s.node === 'web');
  const b = diffPlan(compile(stackWith({ 'web/server.js': 'console.log("web v2")\n' })), undefined, KEY).instructions.find((s) => s.op === 'DEPLOY' && s.node === 'web');
  const c = diffPlan(compile(base), undefined, KEY).instructions.find((s) => s.op === 'DEPLOY' && s.node === 'web');
  t.regex((a as { image: string }).image, /^quarry\/demo-web:[0-9a-f]{12}$/);
  t.not((a as { image: string }).image, (b as { image: string }).image);
  t.is((a as { image: string }).image, (c as { image: string }).image);
});

test('replacing a service that does not exist says so', (t) => {
  const plan = diffPlan(compile(base), deployedBase(), { ...KEY, replace: ['cache'] });
  t.deepEqual(plan.instructions, []);
  t.regex(plan.notices.join('\n'), /--replace cache: there is no service 'cache'/);
});
