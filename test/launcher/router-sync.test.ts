// DEPLOY's wait on the routers' records, the decision part (pure): given the records, the
// revision of the route change and the old backends' URLs, which routers lag and which still drain.
import test from 'ava';
import { parseRouterRecord, routerSyncState, type RouterSyncRecord, type RouterSyncState } from '../../launcher/index.js';

const OLD = 'http://10.0.0.5:32768';
const NEW = 'http://10.0.0.6:32769';
const r = (id: string, revision: number | null, draining: string[] = []): RouterSyncRecord => ({ id, revision, draining });

const cases: Array<[string, RouterSyncRecord[], number | null, string[], RouterSyncState]> = [
  ['no records: nobody to wait on (the fixed delay)', [], 10, [OLD],
    { routers: 0, lagging: [], draining: [], done: false }],
  ['every router at the revision, nothing draining: done', [r('hq', 10), r('edge-1', 12)], 10, [OLD],
    { routers: 2, lagging: [], draining: [], done: true }],
  ['one router behind the revision', [r('hq', 10), r('edge-1', 9)], 10, [OLD],
    { routers: 2, lagging: ['edge-1'], draining: [], done: false }],
  ['a router that applied nothing yet lags', [r('hq', null), r('edge-1', 10)], 10, [OLD],
    { routers: 2, lagging: ['hq'], draining: [], done: false }],
  ['lagging routers are named sorted', [r('c', 1), r('a', 2), r('b', 10)], 10, [],
    { routers: 3, lagging: ['a', 'c'], draining: [], done: false }],
  ['a router still draining an old backend', [r('hq', 10, [OLD]), r('edge-1', 10)], 10, [OLD],
    { routers: 2, lagging: [], draining: [{ id: 'hq', urls: [OLD] }], done: false }],
  ['draining a backend that is not one of the old ones does not hold the deploy', [r('hq', 10, [NEW])], 10, [OLD],
    { routers: 1, lagging: [], draining: [], done: true }],
  ['lagging and draining at once', [r('hq', 8, [OLD]), r('edge-1', 10, [OLD, NEW])], 10, [OLD],
    { routers: 2, lagging: ['hq'], draining: [{ id: 'edge-1', urls: [OLD] }, { id: 'hq', urls: [OLD] }], done: false }],
  ['a change that wrote nothing (revision null): none can lag', [r('hq', null), r('edge-1', 3)], null, [OLD],
    { routers: 2, lagging: [], draining: [], done: true }],
  ['an old URL on port 80 matches the router\'s form of it', [r('hq', 10, ['http://10.0.0.7'])], 10, ['http://10.0.0.7:80'],
    { routers: 1, lagging: [], draining: [{ id: 'hq', urls: ['http://10.0.0.7'] }], done: false }],
];

for (const [name, records, revision, oldUrls, expected] of cases) {
  test(`routerSyncState: ${name}`, (t) => {
    t.deepEqual(routerSyncState(records, revision, oldUrls), expected);
  });
}

const records: Array<[string, string, string, RouterSyncRecord]> = [
  ['a router\'s record', '/quarry/routers/edge-1', JSON.stringify({ id: 'edge-1', revision: 42, draining: [OLD], at: '2026-12-03T17:00:00.000Z' }),
    { id: 'edge-1', revision: 42, draining: [OLD] }],
  ['before any routes', '/quarry/routers/hq', JSON.stringify({ id: 'hq', revision: null, draining: [], at: '2026-12-03T17:00:00.000Z' }),
    { id: 'hq', revision: null, draining: [] }],
  ['not JSON: counts as applying nothing, named by its key', '/quarry/routers/odd', 'garbage',
    { id: 'odd', revision: null, draining: [] }],
  ['wrong types', '/quarry/routers/odd', JSON.stringify({ revision: '42', draining: [1, OLD] }),
    { id: 'odd', revision: null, draining: [OLD] }],
];

for (const [name, key, value, expected] of records) {
  test(`parseRouterRecord: ${name}`, (t) => {
    t.deepEqual(parseRouterRecord(key, value), expected);
  });
}
