// The wiring of one member of a unit, from the compiled stack and an addressing: a table of
// (stack, unit, member, scales) → the runtime's Wiring. Pure: no sockets, no docker.
import test from 'ava';
import { inPortNumbers, unitWiring, type WiringAddressing } from '../../plan/index.js';
import { parseWiring, type Wiring } from '../../runtime/index.js';
import { base, compile, stackWith } from '../compiler/fixture.js';

const topo = base['topology.yml']!;

/** Loopback addressing: port = 1000 × (unit's index) + 10 × member + port's index, readable in tables. */
function addressing(scales: Record<string, number> = {}): WiringAddressing {
  const units = ['src', 'mid', 'sink', 'web'];
  const port = (name: string, member: number, p: string) => 10000 + 1000 * units.indexOf(name) + 10 * member + (p === 'query' ? 1 : 0);
  return {
    members: (name) => scales[name] ?? 1,
    bind: (name, member, p) => `tcp://127.0.0.1:${port(name, member, p)}`,
    endpoint: (name, member, p) => `tcp://127.0.0.1:${port(name, member, p)}`,
  };
}

interface Case {
  name: string;
  files?: Record<string, string | null>;
  unit: string;
  member?: number;
  scales?: Record<string, number>;
  expect: (w: Wiring) => unknown;
  want: unknown;
}

const cases: Case[] = [
  {
    name: 'a source: one push out port to the sharded mapper, spread by its hash field',
    unit: 'src', scales: { mid: 3 },
    expect: (w) => w.ports,
    want: {
      out: {
        kind: 'push', dir: 'out',
        targets: [{
          element: 'mid', port: 'in', by: 'hash:id',
          members: [
            { id: 'mid.0', endpoint: 'tcp://127.0.0.1:11000' },
            { id: 'mid.1', endpoint: 'tcp://127.0.0.1:11010' },
            { id: 'mid.2', endpoint: 'tcp://127.0.0.1:11020' },
          ],
        }],
      },
    },
  },
  {
    name: 'a shard member binds its own address and knows its place',
    unit: 'mid', member: 2, scales: { mid: 3 },
    expect: (w) => ({ member: w.member, members: w.members, class: w.class, in: w.ports.in }),
    want: { member: 2, members: 3, class: 'mapper', in: { kind: 'push', dir: 'in', bind: 'tcp://127.0.0.1:11020' } },
  },
  {
    name: 'a sink: a push in and a query in, each bound',
    unit: 'sink',
    expect: (w) => w.ports,
    want: {
      in: { kind: 'push', dir: 'in', bind: 'tcp://127.0.0.1:12000' },
      query: { kind: 'query', dir: 'in', bind: 'tcp://127.0.0.1:12001' },
    },
  },
  {
    name: 'a node with ports: its query out asks every member of the target, with no spread',
    unit: 'web', scales: { sink: 2 },
    expect: (w) => ({ ports: w.ports, class: w.class, config: w.config }),
    want: {
      ports: {
        ask: {
          kind: 'query', dir: 'out',
          targets: [{
            element: 'sink', port: 'query',
            members: [{ id: 'sink.0', endpoint: 'tcp://127.0.0.1:12001' }, { id: 'sink.1', endpoint: 'tcp://127.0.0.1:12011' }],
          }],
        },
      },
      class: undefined,
      config: undefined,
    },
  },
  {
    name: 'a round-robin shard gives no spread field (round-robin is the default)',
    files: { 'topology.yml': topo.replace('by: "hash:id"', 'by: round-robin') },
    unit: 'src', scales: { mid: 2 },
    expect: (w) => (w.ports.out as { targets: { by?: string }[] }).targets[0]!.by,
    want: undefined,
  },
  {
    name: 'an element\'s config travels in its wiring',
    files: { 'topology.yml': topo.replace('    class: sink\n', '    class: sink\n    config: { depth: 2 }\n') },
    unit: 'sink',
    expect: (w) => w.config,
    want: { depth: 2 },
  },
  {
    name: 'one out port feeding two elements targets both (fan-out)',
    files: {
      'topology.yml': topo.replace('  - mid.out -> sink.in\n', '  - mid.out -> sink.in\n  - src.out -> sink.in\n'),
      'elements/source/element.yml': 'ports:\n  out: { kind: push, dir: out, fields: [id, body, tag] }\n',
    },
    unit: 'src',
    expect: (w) => (w.ports.out as { targets: { element: string }[] }).targets.map((t) => t.element),
    want: ['mid', 'sink'],
  },
  {
    name: 'a target scaled to zero has no members yet',
    unit: 'src', scales: { mid: 0 },
    expect: (w) => (w.ports.out as { targets: { members: unknown[] }[] }).targets[0]!.members,
    want: [],
  },
];

for (const c of cases) {
  test(c.name, (t) => {
    const stack = compile(c.files ? stackWith(c.files) : base);
    const wiring = unitWiring(stack, c.unit, c.member ?? 0, addressing(c.scales));
    t.deepEqual(c.expect(wiring), c.want);
    t.is(wiring.stack, 'demo');
    t.is(wiring.element, c.unit);
    t.notThrows(() => parseWiring(JSON.parse(JSON.stringify(wiring))), 'the runtime accepts it');
  });
}

test('member ids and the control socket come from the addressing when it gives them', (t) => {
  const stack = compile(base);
  const wiring = unitWiring(stack, 'src', 0, {
    ...addressing(),
    memberId: (name, m) => `${name}@${m}`,
    control: (name, m) => `ipc:///tmp/${name}.${m}.ctl`,
  });
  t.is(wiring.control, 'ipc:///tmp/src.0.ctl');
  t.deepEqual((wiring.ports.out as { targets: { members: { id: string }[] }[] }).targets[0]!.members.map((m) => m.id), ['mid@0']);
});

test('in port numbers: 7001, 7002, … in port-name order; out ports get none', (t) => {
  const stack = compile(base);
  t.deepEqual(inPortNumbers(stack, 'sink'), { in: 7001, query: 7002 });
  t.deepEqual(inPortNumbers(stack, 'src'), {});
  t.deepEqual(inPortNumbers(stack, 'web'), {});
});

test('an unknown unit is a bug in the caller, said plainly', (t) => {
  const stack = compile(base);
  t.throws(() => unitWiring(stack, 'nope', 0, addressing()), { message: /no element or node named nope/ });
});
