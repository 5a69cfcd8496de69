// The grid's membership (locknet's hosts and /etc/hosts's block): tables of the grid in,
// records, lines and etcd changes out. Pure.
import test from 'ava';
import { hostsBlock, membershipChanges, networkHosts, type GridHosts, type NetworkHost } from '../../plan/index.js';

const cases: { name: string; grid: GridHosts; hosts: NetworkHost[] }[] = [
  { name: 'no grid', grid: { servers: [] }, hosts: [] },
  { name: 'HQ alone', grid: { hq: '172.30.0.1', servers: [] }, hosts: [{ id: 'hq', ip: '172.30.0.1' }] },
  {
    name: 'HQ and servers, by id',
    grid: { hq: '172.30.0.1', servers: [{ id: 's2', address: '172.30.0.3' }, { id: 's1', address: '172.30.0.2' }] },
    hosts: [{ id: 'hq', ip: '172.30.0.1' }, { id: 's1', ip: '172.30.0.2' }, { id: 's2', ip: '172.30.0.3' }],
  },
  {
    name: 'IPv6 addresses are members',
    grid: { hq: 'fd00::1', servers: [{ id: 'a', address: 'fd00::2' }] },
    hosts: [{ id: 'a', ip: 'fd00::2' }, { id: 'hq', ip: 'fd00::1' }],
  },
  {
    name: 'a host name cannot be a member (an ipset holds addresses)',
    grid: { hq: 'hq.example.com', servers: [{ id: 's1', address: 'box.example.com' }, { id: 's2', address: '10.0.0.2' }] },
    hosts: [{ id: 's2', ip: '10.0.0.2' }],
  },
  {
    name: 'a server named hq does not hide HQ (the server wins: it is the record HQ wrote last)',
    grid: { hq: '10.0.0.1', servers: [{ id: 'hq', address: '10.0.0.9' }] },
    hosts: [{ id: 'hq', ip: '10.0.0.9' }],
  },
];

for (const c of cases) {
  test(`networkHosts: ${c.name}`, (t) => {
    t.deepEqual(networkHosts(c.grid), c.hosts);
  });
}

test('hostsBlock: one "ip id" line per host, in order', (t) => {
  t.is(hostsBlock([{ id: 'hq', ip: '10.0.0.1' }, { id: 's1', ip: 'fd00::2' }]), '10.0.0.1 hq\nfd00::2 s1\n');
  t.is(hostsBlock([]), '');
});

const changeCases: { name: string; current: Record<string, string>; wanted: NetworkHost[]; put: string[]; remove: string[] }[] = [
  { name: 'nothing yet', current: {}, wanted: [{ id: 's1', ip: '10.0.0.2' }], put: ['s1'], remove: [] },
  { name: 'all in place', current: { s1: '{"id":"s1","ip":"10.0.0.2"}' }, wanted: [{ id: 's1', ip: '10.0.0.2' }], put: [], remove: [] },
  { name: 'an address changed', current: { s1: '{"id":"s1","ip":"10.0.0.9"}' }, wanted: [{ id: 's1', ip: '10.0.0.2' }], put: ['s1'], remove: [] },
  { name: 'a server left', current: { s1: '{"id":"s1","ip":"10.0.0.2"}', s2: 'x' }, wanted: [{ id: 's1', ip: '10.0.0.2' }], put: [], remove: ['s2'] },
  { name: 'a record that is not ours is rewritten', current: { s1: 'garbage' }, wanted: [{ id: 's1', ip: '10.0.0.2' }], put: ['s1'], remove: [] },
  { name: 'everyone left', current: { b: '1', a: '2' }, wanted: [], put: [], remove: ['a', 'b'] },
];

for (const c of changeCases) {
  test(`membershipChanges: ${c.name}`, (t) => {
    const changes = membershipChanges(new Map(Object.entries(c.current)), c.wanted);
    t.deepEqual(changes.put.map((h) => h.id), c.put);
    t.deepEqual(changes.remove, c.remove);
  });
}
