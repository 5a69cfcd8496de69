// Env changes (`quarry env`): tables of (stack, set, unset) → faults word for word, of
// (env, set, unset) → the env after, and the stack with its env merged in. Pure.
import test from 'ava';
import { applyPlan, changeEnv, diffPlan, envFaults, withEnv } from '../../plan/index.js';
import { base, compile, stackWith } from '../compiler/fixture.js';

/** Any key: these plans are compared only with themselves. */
const KEY = { digestKey: 'a test digest key' };

const q = base['quarry.yml']!;
const spec = compile(base);

// ---- envFaults ----

interface FaultCase {
  name: string;
  /** The base stack with these files changed. */
  files?: Record<string, string | null>;
  set?: Record<string, unknown>;
  unset?: string[];
  faults: string[];
}

const notName = (key: string) => `'${key}' is not an env name (letters, digits and _, not starting with a digit)`;
const quarrys = (key: string) => `${key} is set by quarry itself`;

const faultCases: FaultCase[] = [
  { name: 'a key set', set: { GREETING: 'hello' }, faults: [] },
  { name: 'a key unset', unset: ['GREETING'], faults: [] },
  { name: 'set to the empty string', set: { EMPTY: '' }, faults: [] },
  { name: 'lower case and underscores', set: { _private_key: 'x', mixed_Case9: 'y' }, faults: [] },
  { name: 'quarry.yml\'s own keys may be overridden', set: { MODE: 'prod' }, faults: [] },
  { name: 'nothing to change', faults: ['say what to change: set KEY=VALUE or unset KEY'] },
  { name: 'starts with a digit', set: { '1KEY': 'x' }, faults: [notName('1KEY')] },
  { name: 'a dash', set: { 'MY-KEY': 'x' }, faults: [notName('MY-KEY')] },
  { name: 'a space, unset', unset: ['MY KEY'], faults: [notName('MY KEY')] },
  { name: 'the empty name', set: { '': 'x' }, faults: [notName('')] },
  { name: 'QUARRY_ names', set: { QUARRY_STACK: 'x' }, unset: ['QUARRY_WIRING'], faults: [quarrys('QUARRY_STACK'), quarrys('QUARRY_WIRING')] },
  { name: 'QUARRY_ alone is quarry\'s too', set: { QUARRY_: 'x' }, faults: [quarrys('QUARRY_')] },
  { name: 'PORT', set: { PORT: '80' }, faults: [quarrys('PORT')] },
  { name: 'names that only contain PORT or QUARRY are the user\'s', set: { PORTS: '1', MY_PORT: '2', XQUARRY_A: '3', quarry_x: '4' }, faults: [] },
  { name: 'a service\'s address', set: { DB_HOST: 'x' }, unset: ['DB_PORT'], faults: [quarrys('DB_HOST'), quarrys('DB_PORT')] },
  { name: 'a web node\'s name is no service address', set: { WEB_HOST: 'x', WEB_PORT: '1' }, faults: [] },
  {
    name: 'a service with a dash: its names with _',
    files: { 'quarry.yml': q.replace('  db:\n', '  my-cache:\n') },
    set: { MY_CACHE_HOST: 'x', DB_HOST: 'y' },
    faults: [quarrys('MY_CACHE_HOST')],
  },
  { name: 'a number as value', set: { N: 3 }, faults: ['N: the value must be a string'] },
  { name: 'null and an object as values', set: { A: null, B: { x: 1 } }, faults: ['A: the value must be a string', 'B: the value must be a string'] },
  {
    name: 'every fault: names set, then unset, then values',
    set: { '9X': 'a', PORT: 1, OK: 'fine' },
    unset: ['QUARRY_NAME', 'bad-name'],
    faults: [notName('9X'), quarrys('PORT'), quarrys('QUARRY_NAME'), notName('bad-name'), 'PORT: the value must be a string'],
  },
];

for (const c of faultCases) {
  test(`envFaults: ${c.name}`, (t) => {
    const stack = c.files ? compile(stackWith(c.files)) : spec;
    t.deepEqual(envFaults(stack, c.set ?? {}, c.unset ?? []), c.faults);
  });
}

// ---- changeEnv ----

const changeCases: { name: string; env: Record<string, string>; set?: Record<string, string>; unset?: string[]; expect: Record<string, string> }[] = [
  { name: 'a key added', env: { A: '1' }, set: { B: '2' }, expect: { A: '1', B: '2' } },
  { name: 'a key changed', env: { A: '1' }, set: { A: '2' }, expect: { A: '2' } },
  { name: 'a key removed', env: { A: '1', B: '2' }, unset: ['A'], expect: { B: '2' } },
  { name: 'unsetting a key not set', env: { A: '1' }, unset: ['Z'], expect: { A: '1' } },
  { name: 'set to the empty string is set', env: {}, set: { A: '' }, expect: { A: '' } },
  { name: 'set and unset at once: unset wins', env: { A: '1' }, set: { A: '2', B: '3' }, unset: ['A'], expect: { B: '3' } },
  { name: 'from nothing', env: {}, set: { A: '1' }, unset: ['B'], expect: { A: '1' } },
];

for (const c of changeCases) {
  test(`changeEnv: ${c.name}`, (t) => {
    const before = structuredClone(c.env);
    t.deepEqual(changeEnv(c.env, c.set ?? {}, c.unset ?? []), c.expect);
    t.deepEqual(c.env, before, 'the env given is left as it is');
  });
}

// ---- withEnv ----

const mergeCases: { name: string; env: Record<string, string>; expect: Record<string, string> }[] = [
  { name: 'nothing set: quarry.yml\'s env', env: {}, expect: { MODE: 'test' } },
  { name: 'a key added', env: { GREETING: 'hi' }, expect: { MODE: 'test', GREETING: 'hi' } },
  { name: 'quarry env wins over quarry.yml', env: { MODE: 'prod' }, expect: { MODE: 'prod' } },
];

for (const c of mergeCases) {
  test(`withEnv: ${c.name}`, (t) => {
    const merged = withEnv(spec, c.env);
    t.deepEqual(merged.env, c.expect);
    t.deepEqual({ ...merged, env: spec.env }, spec, 'only the env differs');
    t.deepEqual(spec.env, { MODE: 'test' }, 'the stack given is left as it is');
  });
}

test('withEnv: an env change redeploys every node and element, not the service; no change, nothing', (t) => {
  const running = applyPlan(spec, undefined, diffPlan(spec, undefined, KEY).instructions);
  const redeployed = diffPlan(withEnv(spec, changeEnv({}, { GREETING: 'hi' }, [])), running, KEY).instructions;
  t.deepEqual(redeployed.map((s) => `${s.op} ${s.node ?? s.element}`), ['DEPLOY sink', 'DEPLOY mid', 'DEPLOY src', 'DEPLOY web']);
  t.deepEqual(diffPlan(withEnv(spec, {}), running, KEY).instructions, []);
});
