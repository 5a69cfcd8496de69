// Which servers of a grid are router hosts: what HQ sees → which to mark and unmark. Pure, a table.
import test from 'ava';
import { routerHostsPlan, type RouterHostSight, type RouterHostsPlan } from '../../plan/index.js';

const server = (id: string, over: Partial<RouterHostSight> = {}): RouterHostSight =>
  ({ id, router: false, tags: [], containers: 0, free: 1024, ready: true, ...over });
const cases: { name: string; servers: RouterHostSight[]; wanted: number; plan: RouterHostsPlan }[] = [
  { name: 'no servers: nothing, and nothing short', servers: [], wanted: 1, plan: { mark: [], unmark: [], short: 0 } },
  { name: 'routers 0: nothing', servers: [server('a')], wanted: 0, plan: { mark: [], unmark: [], short: 0 } },
  { name: 'one wanted, one there: nothing', servers: [server('a', { router: true }), server('b')], wanted: 1, plan: { mark: [], unmark: [], short: 0 } },
  {
    name: 'the one with the fewest containers is marked',
    servers: [server('a', { containers: 3 }), server('b', { containers: 1 }), server('c', { containers: 2 })], wanted: 1,
    plan: { mark: ['b'], unmark: [], short: 0 },
  },
  {
    name: 'a block slicegrid tagged router wins over an emptier one',
    servers: [server('a'), server('b', { tags: ['router'], containers: 4, free: 200 })], wanted: 1,
    plan: { mark: ['b'], unmark: [], short: 0 },
  },
  {
    name: 'equal containers: the most free memory, then the id',
    servers: [server('c', { free: 500 }), server('b', { free: 900 }), server('a', { free: 900 })], wanted: 2,
    plan: { mark: ['a', 'b'], unmark: [], short: 0 },
  },
  {
    name: 'never more router hosts than servers',
    servers: [server('a'), server('b')], wanted: 5,
    plan: { mark: ['a', 'b'], unmark: [], short: 0 },
  },
  {
    name: 'a lost router host (gone from the grid): another is marked, so the count is restored',
    servers: [server('b', { router: true, containers: 2 }), server('c', { containers: 5 }), server('d', { containers: 1 })], wanted: 2,
    plan: { mark: ['d'], unmark: [], short: 0 },
  },
  {
    name: 'a server that does not answer is not marked; a router host that does not answer is kept',
    servers: [server('a', { router: true, ready: false }), server('b', { ready: false }), server('c', { containers: 9 })], wanted: 2,
    plan: { mark: ['c'], unmark: [], short: 0 },
  },
  {
    name: 'no server with room for the router: short, the grid grows for it',
    servers: [server('a', { free: 100 }), server('b', { free: 127 })], wanted: 1,
    plan: { mark: [], unmark: [], short: 1 },
  },
  {
    name: 'routers lowered: the extra hosts with the most containers are unmarked',
    servers: [server('a', { router: true, containers: 1 }), server('b', { router: true, containers: 6 }), server('c', { router: true, containers: 3 })], wanted: 1,
    plan: { mark: [], unmark: ['b', 'c'], short: 0 },
  },
];

for (const c of cases) {
  test(`routerHostsPlan: ${c.name}`, (t) => {
    t.deepEqual(routerHostsPlan(c.servers, c.wanted, 128), c.plan);
  });
}
