// Where members and services are reached, and what a member's container (or process) boots
// with: tables of (stack, peers, unit, member) → env, wiring, endpoints. Pure: no docker, no
// sockets; the grid's live containers are a fake list.
import test from 'ava';
import {
  CONTROL_KEY_ENV, aliasPeers, containerEnv, desiredUnits, loopbackKey, loopbackPeers, memberWiring, publishedPeers, runContainerPeers,
  serviceAddresses, wiredPorts, type DesiredUnit, type LiveContainer, type Peers,
} from '../../plan/index.js';
import { CONTROL_KEY_ENV as RUNTIME_CONTROL_KEY_ENV, parseWiring, type OutPortWiring, type Wiring } from '../../runtime/index.js';
import { base, compile, stackWith } from '../compiler/fixture.js';

/** Any key: these plans are compared only with themselves. */
const KEY = { digestKey: 'a test digest key' };

// base: service db (postgres:16, port 5432), web node (port 8080, out port ask => sink.query),
// elements src -> mid (sharded by hash:id) -> sink; env MODE=test; stack demo.
const stack = compile(base);
const units = desiredUnits(stack, KEY);
const unit = (name: string): DesiredUnit => units.find((u) => u.name === name)!;
const scales = (s: Record<string, number>) => (name: string) => s[name] ?? 1;

/** A fake grid's live containers: server address `10.0.0.<n>`, a container port P published on 30000 + P. */
interface FakeContainer extends LiveContainer { server: string }
const fake = (unit: string, n: number, member?: number, state = 'running'): FakeContainer =>
  ({ id: `c${n}`, unit, n, state, server: `10.0.0.${n}`, ...(member !== undefined && { member }) });
const fakeReach = (c: FakeContainer, port: number) => (c.state === 'running' ? { host: c.server, port: 30000 + port } : undefined);
const fakeLive: FakeContainer[] = [
  fake('db', 1),
  fake('mid', 2, 0, 'exited'),
  fake('mid', 3, 0),
  fake('mid', 5, 0),
  fake('mid', 4, 1),
  fake('sink', 6, 0),
];

const outTargets = (w: Wiring, port: string) => (w.ports[port] as OutPortWiring).targets
  .map((t) => ({ element: t.element, port: t.port, endpoints: t.members.map((m) => `${m.id}=${m.endpoint}`) }));

interface PeersCase {
  name: string;
  peers: () => Peers;
  expect: (p: Peers) => unknown;
  want: unknown;
}

const peersCases: PeersCase[] = [
  {
    name: 'aliasPeers: members by their stable names on the stack\'s network, services by name',
    peers: () => aliasPeers(stack, units, scales({ mid: 3 })),
    expect: (p) => ({
      members: p.members('mid'), sink: p.endpoint('sink', 1, 'query'), mid: p.endpoint('mid', 2, 'in'),
      bind: p.bind('sink', 0, 'query'), control: p.control?.('sink', 0), services: p.services,
    }),
    want: {
      members: 3, sink: 'tcp://sink.1:7002', mid: 'tcp://mid.2:7001',
      bind: 'tcp://0.0.0.0:7002', control: 'tcp://0.0.0.0:7000', services: { DB_HOST: 'db', DB_PORT: '5432' },
    },
  },
  {
    name: 'publishedPeers (a fake live list): the newest running container of each member, by server address and published port',
    peers: () => publishedPeers(stack, units, scales({ mid: 2 }), fakeLive, fakeReach),
    expect: (p) => ({ mid0: p.endpoint('mid', 0, 'in'), mid1: p.endpoint('mid', 1, 'in'), sink: p.endpoint('sink', 0, 'query'), services: p.services }),
    want: { mid0: 'tcp://10.0.0.5:37001', mid1: 'tcp://10.0.0.4:37001', sink: 'tcp://10.0.0.6:37002', services: { DB_HOST: '10.0.0.1', DB_PORT: '35432' } },
  },
  {
    name: 'publishedPeers (a fake live list): leaving containers and members that do not run have no endpoint',
    peers: () => publishedPeers(stack, units, scales({ mid: 3 }), fakeLive, fakeReach, new Set(['c5', 'c4'])),
    expect: (p) => [p.endpoint('mid', 0, 'in'), p.endpoint('mid', 1, 'in'), p.endpoint('mid', 2, 'in')],
    want: ['tcp://10.0.0.3:37001', undefined, undefined],
  },
  {
    name: 'publishedPeers (a fake live list): a service that does not run has no address yet',
    peers: () => publishedPeers(stack, units, scales({}), fakeLive.filter((c) => c.unit !== 'db'), fakeReach),
    expect: (p) => p.services,
    want: {},
  },
  {
    name: 'runContainerPeers (quarry run): members by container name, no control socket',
    peers: () => runContainerPeers(stack, units),
    expect: (p) => ({ sink: p.endpoint('sink', 0, 'in'), bind: p.bind('sink', 0, 'in'), control: p.control?.('sink', 0), services: p.services }),
    want: { sink: 'tcp://demo.sink.0:7001', bind: 'tcp://0.0.0.0:7001', control: undefined, services: { DB_HOST: 'db', DB_PORT: '5432' } },
  },
  {
    name: 'loopbackPeers (--processes): binds and endpoints at the ports chosen, services as learned',
    peers: () => loopbackPeers(units, new Map([[loopbackKey('sink', 0, 'query'), 41002]]), { DB_HOST: '127.0.0.1', DB_PORT: '40000' }),
    expect: (p) => ({ bind: p.bind('sink', 0, 'query'), endpoint: p.endpoint('sink', 0, 'query'), services: p.services }),
    want: { bind: 'tcp://127.0.0.1:41002', endpoint: 'tcp://127.0.0.1:41002', services: { DB_HOST: '127.0.0.1', DB_PORT: '40000' } },
  },
];

for (const c of peersCases) test(c.name, (t) => t.deepEqual(c.expect(c.peers()), c.want));

test('loopbackPeers: a port never chosen is a bug in the caller, said plainly', (t) => {
  const p = loopbackPeers(units, new Map(), {});
  t.throws(() => p.endpoint('sink', 0, 'in'), { message: 'no port chosen for sink.0 in' });
});

interface EnvCase {
  name: string;
  unit: string;
  member?: number;
  peers: () => Peers;
  port?: number;
  files?: Record<string, string | null>;
  /** The env without QUARRY_WIRING. */
  env: Record<string, string>;
  /** What QUARRY_WIRING says, when the unit is wired. */
  wiring?: (w: Wiring) => unknown;
  want?: unknown;
}

const identity = (name: string, member = 0) => ({ QUARRY_STACK: 'demo', QUARRY_NAME: name, QUARRY_MEMBER: String(member) });
const aliases = () => aliasPeers(stack, units, scales({ mid: 2, sink: 2 }));

const envCases: EnvCase[] = [
  {
    name: 'a service: the services\' addresses and its identity; no stack env, no PORT (its image listens where it does)',
    unit: 'db', peers: aliases,
    env: { DB_HOST: 'db', DB_PORT: '5432', ...identity('db') },
  },
  {
    name: 'a service run as a process gets the port it must listen on',
    unit: 'db', peers: aliases, port: 40123,
    env: { DB_HOST: 'db', DB_PORT: '5432', ...identity('db'), PORT: '40123' },
  },
  {
    name: 'a web node without ports: stack env, services, identity, its own port; no wiring',
    files: {
      'quarry.yml': base['quarry.yml']!.replace('    ports:\n      ask: { kind: query, dir: out, fields: [q] }\n', ''),
      'topology.yml': base['topology.yml']!.replace('  - web.ask => sink.query\n', ''),
    },
    unit: 'web', member: 1, peers: aliases,
    env: { MODE: 'test', DB_HOST: 'db', DB_PORT: '5432', ...identity('web', 1), PORT: '8080' },
  },
  {
    name: 'a web node with ports: its query out port asks every member of the target, by alias',
    unit: 'web', member: 1, peers: aliases,
    env: { MODE: 'test', DB_HOST: 'db', DB_PORT: '5432', ...identity('web', 1), PORT: '8080' },
    wiring: (w) => ({ targets: outTargets(w, 'ask'), control: w.control }),
    want: { targets: [{ element: 'sink', port: 'query', endpoints: ['sink.0=tcp://sink.0:7002', 'sink.1=tcp://sink.1:7002'] }], control: 'tcp://0.0.0.0:7000' },
  },
  {
    name: 'a web node run as a process listens on the port given',
    unit: 'web', peers: () => loopbackPeers(units, new Map([[loopbackKey('sink', 0, 'query'), 41002]]), { DB_HOST: '127.0.0.1', DB_PORT: '40000' }),
    port: 41234,
    env: { MODE: 'test', DB_HOST: '127.0.0.1', DB_PORT: '40000', ...identity('web'), PORT: '41234' },
    wiring: (w) => ({ targets: outTargets(w, 'ask'), control: w.control }),
    want: { targets: [{ element: 'sink', port: 'query', endpoints: ['sink.0=tcp://127.0.0.1:41002'] }], control: undefined },
  },
  {
    name: 'an element with wiring: binds its fixed ports, pushes to every member of the shard, spread by its field',
    unit: 'mid', member: 1, peers: aliases,
    env: { MODE: 'test', DB_HOST: 'db', DB_PORT: '5432', ...identity('mid', 1) },
    wiring: (w) => ({ member: w.member, members: w.members, class: w.class, in: w.ports.in, out: outTargets(w, 'out') }),
    want: {
      member: 1, members: 2, class: 'mapper',
      in: { kind: 'push', dir: 'in', bind: 'tcp://0.0.0.0:7001' },
      out: [{ element: 'sink', port: 'in', endpoints: ['sink.0=tcp://sink.0:7001', 'sink.1=tcp://sink.1:7001'] }],
    },
  },
  {
    name: 'an element on a grid (a fake live list): peers by server address and published port',
    unit: 'src', peers: () => publishedPeers(stack, units, scales({ mid: 2 }), fakeLive, fakeReach),
    env: { MODE: 'test', DB_HOST: '10.0.0.1', DB_PORT: '35432', ...identity('src') },
    wiring: (w) => outTargets(w, 'out'),
    want: [{ element: 'mid', port: 'in', endpoints: ['mid.0=tcp://10.0.0.5:37001', 'mid.1=tcp://10.0.0.4:37001'] }],
  },
  {
    name: 'a wired member gets the control key in its env (QUARRY_CONTROL_KEY), not in its wiring',
    unit: 'src', peers: () => ({ ...publishedPeers(stack, units, scales({ mid: 2 }), fakeLive, fakeReach), controlKey: 'k3y' }),
    env: { MODE: 'test', DB_HOST: '10.0.0.1', DB_PORT: '35432', ...identity('src'), QUARRY_CONTROL_KEY: 'k3y' },
    wiring: (w) => JSON.stringify(w).includes('k3y'),
    want: false,
  },
  {
    name: 'a wired web node gets the control key too: connect() runs its control socket',
    unit: 'web', member: 1, peers: () => ({ ...aliases(), controlKey: 'k3y' }),
    env: { MODE: 'test', DB_HOST: 'db', DB_PORT: '5432', ...identity('web', 1), PORT: '8080', QUARRY_CONTROL_KEY: 'k3y' },
    wiring: (w) => JSON.stringify(w).includes('k3y'),
    want: false,
  },
  {
    name: 'a service gets no control key: it has no control socket',
    unit: 'db', peers: () => ({ ...aliases(), controlKey: 'k3y' }),
    env: { DB_HOST: 'db', DB_PORT: '5432', ...identity('db') },
  },
];

for (const c of envCases) {
  test(`containerEnv: ${c.name}`, (t) => {
    const spec = c.files ? compile(stackWith(c.files)) : stack;
    const u = desiredUnits(spec, KEY).find((x) => x.name === c.unit)!;
    const env = containerEnv(spec, u, c.member ?? 0, c.peers(), c.port !== undefined ? { port: c.port } : {});
    const { QUARRY_WIRING: wiring, ...rest } = env;
    t.deepEqual(rest, c.env);
    if (!c.wiring) return t.is(wiring, undefined);
    const parsed = parseWiring(JSON.parse(wiring!), 'QUARRY_WIRING');
    t.is(parsed.element, c.unit);
    t.is(parsed.stack, 'demo');
    t.deepEqual(c.wiring(parsed), c.want);
  });
}

test('memberWiring: a member that does not run (a fake live list) is left out of its producers\' targets', (t) => {
  const peers = publishedPeers(stack, units, scales({ mid: 3 }), fakeLive, fakeReach);
  const wiring = memberWiring(stack, 'src', 0, peers);
  t.deepEqual(outTargets(wiring, 'out'), [{ element: 'mid', port: 'in', endpoints: ['mid.0=tcp://10.0.0.5:37001', 'mid.1=tcp://10.0.0.4:37001'] }]);
  t.is(wiring.members, 1);
  t.is(wiring.control, 'tcp://0.0.0.0:7000');
});

test('the plan and the runtime name the control key\'s env var alike', (t) => {
  t.is(CONTROL_KEY_ENV, RUNTIME_CONTROL_KEY_ENV);
  t.is(CONTROL_KEY_ENV, 'QUARRY_CONTROL_KEY');
});

test('serviceAddresses and wiredPorts: services by name; a wired unit\'s control socket and in ports', (t) => {
  t.deepEqual(serviceAddresses(units), { DB_HOST: 'db', DB_PORT: '5432' });
  t.deepEqual(wiredPorts(stack, 'sink'), [7000, 7001, 7002]);
  t.deepEqual(wiredPorts(stack, 'web'), [7000]);
  t.deepEqual(wiredPorts(stack, 'db'), []);
  t.is(unit('db').kind, 'service');
});
