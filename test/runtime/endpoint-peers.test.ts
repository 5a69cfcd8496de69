// Targets from endpoint records (runtime/endpoint-peers.ts), as tables: pure, no sockets. The
// ids must be the ones the plan's wiring gives, so that a port keeps a member that did not move.
import test from 'ava';
import { desiredUnits, memberWiring, publishedPeers, type LiveContainer } from '../../plan/index.js';
import {
  EndpointPeerSource, endpointTargets, sameTargets,
  type EndpointFeed, type EndpointRecordLike, type MemberRecords, type OutPortWiring, type PeerChange, type Target,
} from '../../runtime/index.js';
import { base, compile } from '../compiler/fixture.js';

/** Any key: these plans are compared only with themselves. */
const KEY = { digestKey: 'a test digest key' };

const rec = (host: string, ports: Record<string, number>): EndpointRecordLike => ({ host, ports });
const of = (entries: [number, EndpointRecordLike][]): MemberRecords => new Map(entries);
const records = (by: Record<string, [number, EndpointRecordLike][]>) =>
  new Map(Object.entries(by).map(([element, e]) => [element, of(e)]));

const mid = (members: [string, string][], by = 'hash:id'): Target =>
  ({ element: 'mid', port: 'in', by, members: members.map(([id, endpoint]) => ({ id, endpoint })) });

interface Case {
  name: string;
  current: Target[];
  records: Map<string, MemberRecords>;
  want: Target[];
}

const cases: Case[] = [
  {
    name: 'members in member order (not the order records came in), ids <element>.<member>, hash spread kept',
    current: [mid([['mid.0', 'tcp://10.0.0.1:30001']])],
    records: records({ mid: [[2, rec('10.0.0.3', { in: 30003 })], [0, rec('10.0.0.1', { in: 30001 })], [1, rec('10.0.0.2', { in: 30002 })]] }),
    want: [mid([['mid.0', 'tcp://10.0.0.1:30001'], ['mid.1', 'tcp://10.0.0.2:30002'], ['mid.2', 'tcp://10.0.0.3:30003']])],
  },
  {
    name: 'a member that moved keeps its id with the new endpoint; one whose record is gone is left out',
    current: [mid([['mid.0', 'tcp://10.0.0.1:30001'], ['mid.1', 'tcp://10.0.0.2:30002']])],
    records: records({ mid: [[0, rec('10.0.0.7', { in: 31001 })]] }),
    want: [mid([['mid.0', 'tcp://10.0.0.7:31001']])],
  },
  {
    name: 'a record without the target\'s in port (or with a bad number) is left out',
    current: [mid([])],
    records: records({ mid: [[0, rec('10.0.0.1', { other: 30001 })], [1, rec('10.0.0.2', { in: 30002 })], [2, rec('10.0.0.3', { in: 0 })]] }),
    want: [mid([['mid.1', 'tcp://10.0.0.2:30002']])],
  },
  {
    name: 'a fan-out: each target from its own element\'s records, in the port\'s order; a query target carries no spread',
    current: [
      { element: 'sink', port: 'query', members: [] },
      { element: 'audit', port: 'in', members: [{ id: 'audit.0', endpoint: 'tcp://audit.0:7001' }] },
    ],
    records: records({ sink: [[0, rec('172.18.0.4', { in: 7001, query: 7002 })]], audit: [[0, rec('172.18.0.5', { in: 7001 })]] }),
    want: [
      { element: 'sink', port: 'query', members: [{ id: 'sink.0', endpoint: 'tcp://172.18.0.4:7002' }] },
      { element: 'audit', port: 'in', members: [{ id: 'audit.0', endpoint: 'tcp://172.18.0.5:7001' }] },
    ],
  },
  {
    name: 'an element with no records at all keeps its members (unknown is not empty), and its target stays',
    current: [mid([['mid.0', 'tcp://mid.0:7001']]), { element: 'sink', port: 'in', members: [{ id: 'sink.0', endpoint: 'tcp://sink.0:7001' }] }],
    records: records({ mid: [] }),
    want: [mid([['mid.0', 'tcp://mid.0:7001']]), { element: 'sink', port: 'in', members: [{ id: 'sink.0', endpoint: 'tcp://sink.0:7001' }] }],
  },
  {
    name: 'an IPv6 host is bracketed',
    current: [mid([], 'round-robin')],
    records: records({ mid: [[0, rec('fd00::5', { in: 7001 })]] }),
    want: [mid([['mid.0', 'tcp://[fd00::5]:7001']], 'round-robin')],
  },
];

for (const c of cases) {
  test(`endpointTargets: ${c.name}`, (t) => {
    const before = JSON.stringify(c.current);
    const got = endpointTargets(c.current, c.records);
    t.deepEqual(got, c.want);
    t.true(sameTargets(got, c.want));
    t.is(JSON.stringify(c.current), before, 'the current targets are not changed in place');
  });
}

test('endpointTargets gives exactly the targets the plan wires from the same containers (ids and endpoints)', (t) => {
  // base: src -> mid (sharded by hash:id) -> sink; on a fake grid a container port P is published on 30000 + P.
  const stack = compile(base);
  const units = desiredUnits(stack, KEY);
  const live: (LiveContainer & { server: string })[] = [
    { id: 'a', unit: 'mid', n: 3, member: 0, state: 'running', server: '10.0.0.3' },
    { id: 'b', unit: 'mid', n: 4, member: 1, state: 'running', server: '10.0.0.4' },
    { id: 'c', unit: 'mid', n: 5, member: 2, state: 'running', server: '10.0.0.5' },
  ];
  const peers = publishedPeers(stack, units, () => 3, live, (c, port) => ({ host: c.server, port: 30000 + port }));
  const wired = (memberWiring(stack, 'src', 0, peers).ports.out as OutPortWiring).targets;
  // What HQ's writeEndpoints writes for those containers: host the server, ports the published ones.
  const fromEtcd = records({ mid: live.map((c) => [c.member!, rec(c.server, { in: 30000 + 7001 })]) });
  const empty = wired.map((x) => ({ ...x, members: [] }));
  t.deepEqual(endpointTargets(empty, fromEtcd), wired);
  t.true(sameTargets(endpointTargets(wired, fromEtcd), wired), 'nothing moved: nothing to send');
  t.is(wired[0]!.by, 'hash:id');
});

test('sameTargets: a changed endpoint, id, spread or order is a difference', (t) => {
  const a = [mid([['mid.0', 'tcp://h:1'], ['mid.1', 'tcp://h:2']])];
  t.true(sameTargets(a, [mid([['mid.0', 'tcp://h:1'], ['mid.1', 'tcp://h:2']])]));
  t.false(sameTargets(a, [mid([['mid.0', 'tcp://h:9'], ['mid.1', 'tcp://h:2']])]));
  t.false(sameTargets(a, [mid([['x.0', 'tcp://h:1'], ['mid.1', 'tcp://h:2']])]));
  t.false(sameTargets(a, [mid([['mid.0', 'tcp://h:1'], ['mid.1', 'tcp://h:2']], 'round-robin')]));
  t.false(sameTargets(a, [mid([['mid.1', 'tcp://h:2'], ['mid.0', 'tcp://h:1']])]));
  t.true(sameTargets([{ element: 'e', port: 'p', members: [] }], [{ element: 'e', port: 'p', by: 'round-robin', members: [] }]));
});

test('EndpointPeerSource: reports a port\'s new targets only when the records change them', async (t) => {
  let report!: (element: string, records: MemberRecords) => void;
  let closed = false;
  const feed: EndpointFeed = { watch: (f) => { report = f; }, close: () => { closed = true; } };
  const source = new EndpointPeerSource(feed, {
    ports: {
      in: { kind: 'push', dir: 'in', bind: 'tcp://0.0.0.0:7001' },
      out: { kind: 'push', dir: 'out', targets: [mid([['mid.0', 'tcp://10.0.0.1:30001']])] },
      ask: { kind: 'query', dir: 'out', targets: [{ element: 'sink', port: 'query', members: [] }] },
    },
  });
  const changes: PeerChange[] = [];
  await source.watch((c) => changes.push(c));
  report('mid', of([[0, rec('10.0.0.1', { in: 30001 })]]));
  t.deepEqual(changes, [], 'the same member at the same endpoint: no change');
  report('mid', of([[0, rec('10.0.0.1', { in: 30001 })], [1, rec('10.0.0.2', { in: 30001 })]]));
  report('sink', of([[0, rec('10.0.0.9', { query: 30002 })]]));
  report('other', of([[0, rec('10.0.0.8', { in: 30001 })]]));
  t.deepEqual(changes, [
    { port: 'out', targets: [mid([['mid.0', 'tcp://10.0.0.1:30001'], ['mid.1', 'tcp://10.0.0.2:30001']])] },
    { port: 'ask', targets: [{ element: 'sink', port: 'query', members: [{ id: 'sink.0', endpoint: 'tcp://10.0.0.9:30002' }] }] },
  ]);
  t.deepEqual(source.targets('out'), changes[0]!.targets);
  await source.close();
  t.true(closed);
});
