// quarry.yml's and the topology's `restart:`, read: durations in their forms, parts left out absent.
import test from 'ava';
import { base, compile, stackWith } from './fixture.js';

const q = base['quarry.yml']!;
const topo = base['topology.yml']!;

test('a node\'s and an element\'s restart: durations as 500ms, 1m, 1.5h or seconds; what is not given stays absent', (t) => {
  const stack = compile(stackWith({
    'quarry.yml': q
      .replace('    health: /healthz\n', '    health: /healthz\n    restart: { attempts: 2, interval: 1m, delay: 500ms, max_delay: 1.5h }\n')
      .replace('    port: 5432\n', '    port: 5432\n    restart:\n      delay: 2.5\n'),
    'topology.yml': topo.replace('    class: sink\n', '    class: sink\n    restart: { attempts: 0 }\n'),
  }));
  t.deepEqual(stack.nodes.find((n) => n.name === 'web')?.restart, { attempts: 2, intervalMs: 60_000, delayMs: 500, maxDelayMs: 5_400_000 });
  t.deepEqual(stack.nodes.find((n) => n.name === 'db')?.restart, { delayMs: 2500 });
  t.deepEqual(stack.elements.find((e) => e.name === 'sink')?.restart, { attempts: 0 });
  t.is(stack.elements.find((e) => e.name === 'mid')?.restart, undefined);
});

test('no restart, or an empty one: nothing is recorded but an empty policy', (t) => {
  t.true(compile(base).nodes.every((n) => n.restart === undefined));
  const empty = compile(stackWith({ 'quarry.yml': q.replace('    port: 5432\n', '    port: 5432\n    restart: {}\n') }));
  t.deepEqual(empty.nodes.find((n) => n.name === 'db')?.restart, {});
});
