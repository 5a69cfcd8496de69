// quarry.yml's `autoscale:` (issue 17): whether load shards are sized by load, and the stack's
// cap on element instances, with each fault at its place.
import test from 'ava';
import { base, compile, faultsOf, stackWith } from './fixture.js';

const q = base['quarry.yml']!;
const withAutoscale = (text: string) => stackWith({ 'quarry.yml': `${q}autoscale: ${text}\n` });

test('without autoscale: the spec has none (load shards are sized, no cap)', (t) => {
  t.is(compile(stackWith({})).autoscale, undefined);
});

test('max_instances and enabled are read', (t) => {
  t.deepEqual(compile(withAutoscale('{ max_instances: 8 }')).autoscale, { enabled: true, maxInstances: 8 });
  t.deepEqual(compile(withAutoscale('{ enabled: false }')).autoscale, { enabled: false });
});

const cases: Array<{ name: string; text: string; fault: [string, RegExp] }> = [
  { name: 'a cap below what the stack starts with', text: '{ max_instances: 2 }',
    fault: ['quarry.yml:18:29', /autoscale: max_instances \(2\) is below the 3 element instances the stack starts with \(src 1, mid 1, sink 1\)/] },
  { name: 'a cap that is not a whole number', text: '{ max_instances: lots }', fault: ['quarry.yml:18:29', /max_instances/] },
  { name: 'an unknown key', text: '{ max: 4 }', fault: ['quarry.yml:18:14', /unknown key 'max'/] },
  { name: 'enabled that is not true or false', text: '{ enabled: maybe }', fault: ['quarry.yml:18:23', /enabled/] },
  { name: 'not a mapping', text: '8', fault: ['quarry.yml:18:12', /autoscale/] },
];

for (const c of cases) {
  test(`fault: ${c.name}`, (t) => {
    const faults = faultsOf(withAutoscale(c.text));
    t.is(faults.length, 1, faults.join('\n'));
    const [at, pattern] = c.fault;
    t.true(faults[0]!.startsWith(`${at}: `), faults[0]);
    t.regex(faults[0]!, pattern);
  });
}
