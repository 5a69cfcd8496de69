// Host ports chosen at placement: a table of (count, used, range) → ports. Pure.
import test from 'ava';
import { HOST_PORT_RANGE, pickHostPorts } from '../../plan/index.js';

const small = { from: 1, to: 5 };
const cases: { name: string; count: number; used: number[]; next?: number; range?: { from: number; to: number }; ports: number[] | undefined }[] = [
  { name: 'none used: from the start', count: 2, used: [], ports: [30000, 30001] },
  { name: 'used ones skipped', count: 3, used: [30000, 30002], ports: [30001, 30003, 30004] },
  { name: 'nothing asked', count: 0, used: [], ports: [] },
  { name: 'from the cursor, not the lowest free', count: 2, used: [], next: 3, range: small, ports: [3, 4] },
  { name: 'round to the start', count: 3, used: [1], next: 4, range: small, ports: [4, 5, 2] },
  { name: 'a cursor outside the range starts at its start', count: 1, used: [], next: 99, range: small, ports: [1] },
  { name: 'the range full', count: 1, used: [1, 2, 3, 4, 5], range: small, ports: undefined },
  { name: 'fewer left than asked', count: 3, used: [1, 2, 3], range: small, ports: undefined },
];

for (const c of cases) {
  test(`pickHostPorts: ${c.name}`, (t) => {
    t.deepEqual(pickHostPorts(c.count, new Set(c.used), c.next, c.range), c.ports);
  });
}

test('the range stays below the kernel\'s ephemeral ports', (t) => {
  t.true(HOST_PORT_RANGE.to < 32768);
});
