// The containers a deploy, a scale or a recovery asks for, and the images a stack needs: tables
// of (stack, unit, members, containers it had) → requests. Pure: nothing is started or built.
import test from 'ava';
import {
  aliasPeers, containerEnv, containerRequests, desiredUnits, imageBuilds, type ContainerRequest, type DesiredUnit,
} from '../../plan/index.js';
import { base, compile, stackWith } from '../compiler/fixture.js';

/** Any key: these plans are compared only with themselves. */
const KEY = { digestKey: 'a test digest key' };

const stack = compile(base);
const units = desiredUnits(stack, KEY);
const unit = (name: string): DesiredUnit => units.find((u) => u.name === name)!;
const peers = aliasPeers(stack, units, (name) => (name === 'mid' ? 3 : 1));

interface Case {
  name: string;
  unit: string;
  members: number[];
  existing?: { n: number }[];
  grid?: boolean;
  expect: (r: ContainerRequest[]) => unknown;
  want: unknown;
}

const cases: Case[] = [
  {
    name: 'a unit that never ran: numbered from 1, one per member',
    unit: 'mid', members: [0, 1, 2],
    expect: (r) => r.map((c) => [c.n, c.member, c.aliases]),
    want: [[1, 0, ['mid.0']], [2, 1, ['mid.1']], [3, 2, ['mid.2']]],
  },
  {
    name: 'numbered after every container the unit has had, whatever its state; members as asked',
    unit: 'mid', members: [0, 2], existing: [{ n: 3 }, { n: 7 }, { n: 5 }, { n: Number.NaN }],
    expect: (r) => r.map((c) => [c.n, c.member]),
    want: [[8, 0], [9, 2]],
  },
  {
    name: 'a service: its port, no member alias, nothing published even on a grid',
    unit: 'db', members: [0], grid: true,
    expect: (r) => r.map(({ env: _env, digest: _digest, ...c }) => c),
    want: [{ stack: 'demo', name: 'db', kind: 'service', n: 1, image: 'postgres:16', port: 5432, memoryMb: unit('db').memory, release: 'v4', member: 0 }],
  },
  {
    name: 'a web node: its port, the release, the digest, its member alias; nothing published on one engine',
    unit: 'web', members: [1], existing: [{ n: 2 }],
    expect: (r) => r.map(({ env: _env, ...c }) => c),
    want: [{
      stack: 'demo', name: 'web', kind: 'web', n: 3, image: unit('web').image, port: 8080, memoryMb: unit('web').memory,
      release: 'v4', digest: unit('web').digest, member: 1, aliases: ['web.1'],
    }],
  },
  {
    name: 'on a grid a wired unit publishes its control socket and in ports',
    unit: 'sink', members: [0], grid: true,
    expect: (r) => r.map((c) => c.publish),
    want: [[7000, 7001, 7002]],
  },
  {
    name: 'on a grid a node with only out ports publishes its control socket',
    unit: 'web', members: [0], grid: true,
    expect: (r) => r.map((c) => c.publish),
    want: [[7000]],
  },
  {
    name: 'each member boots with its own env (containerEnv)',
    unit: 'mid', members: [0, 2],
    expect: (r) => r.map((c) => c.env),
    want: [containerEnv(stack, unit('mid'), 0, peers), containerEnv(stack, unit('mid'), 2, peers)],
  },
];

for (const c of cases) {
  test(`containerRequests: ${c.name}`, (t) => {
    const requests = containerRequests(stack, unit(c.unit), c.members, c.existing ?? [], peers, { release: 'v4', publishWired: c.grid ?? false });
    t.deepEqual(c.expect(requests), c.want);
  });
}

test('containerRequests: a command travels; no members, no requests', (t) => {
  const spec = compile(stackWith({ 'quarry.yml': base['quarry.yml']!.replace('    health: /healthz\n', '    health: /healthz\n    command: [node, server.js]\n') }));
  const web = desiredUnits(spec, KEY).find((u) => u.name === 'web')!;
  const [request] = containerRequests(spec, web, [0], [], aliasPeers(spec, desiredUnits(spec, KEY), () => 1), { release: 'v1', publishWired: false });
  t.deepEqual(request!.command, ['node', 'server.js']);
  t.deepEqual(containerRequests(stack, unit('mid'), [], [{ n: 4 }], peers, { release: 'v1', publishWired: false }), []);
});

interface ImageCase {
  name: string;
  files?: Record<string, string | null>;
  want: { runtime: boolean; images: Array<[string, string, string?]> };
}

const imageCases: ImageCase[] = [
  {
    name: 'the base stack: an image to find (db), a node\'s Dockerfile, element classes on the runtime image; runtime first',
    want: {
      runtime: true,
      images: [
        ['present', 'db'],
        ['element', 'sink', 'elements/sink'], ['element', 'mid', 'elements/mapper'], ['element', 'src', 'elements/source'],
        ['dockerfile', 'web', 'web'],
      ],
    },
  },
  {
    name: 'an element class with its own Dockerfile is built from it',
    files: { 'elements/sink/Dockerfile': 'FROM quarry/node:20\n' },
    want: {
      runtime: true,
      images: [
        ['present', 'db'],
        ['dockerfile', 'sink', 'elements/sink'], ['element', 'mid', 'elements/mapper'], ['element', 'src', 'elements/source'],
        ['dockerfile', 'web', 'web'],
      ],
    },
  },
  {
    name: 'two elements of one class: its image once',
    files: { 'topology.yml': base['topology.yml']!.replace('  sink:\n    class: sink\n', '  sink:\n    class: sink\n  sink2:\n    class: sink\n') },
    want: {
      runtime: true,
      images: [
        ['present', 'db'],
        ['element', 'sink', 'elements/sink'], ['element', 'mid', 'elements/mapper'], ['element', 'src', 'elements/source'],
        ['dockerfile', 'web', 'web'],
      ],
    },
  },
];

for (const c of imageCases) {
  test(`imageBuilds: ${c.name}`, (t) => {
    const spec = c.files ? compile(stackWith(c.files)) : stack;
    const { runtime, images } = imageBuilds(desiredUnits(spec, KEY));
    t.is(runtime, c.want.runtime);
    t.deepEqual(images.map((i) => (i.how === 'present' ? [i.how, i.unit.name] : [i.how, i.unit.name, i.folder])), c.want.images);
    t.is(new Set(images.map((i) => i.image)).size, images.length, 'each image once');
  });
}

test('imageBuilds: units that build nothing need no runtime image', (t) => {
  const { runtime, images } = imageBuilds([unit('db')]);
  t.false(runtime);
  t.deepEqual(images.map((i) => i.how), ['present']);
});
