// `quarry top`'s view, built by a pure function from fixed ElementMetrics records and a fixed
// compiled spec (no etcd, no HQ): sums over instances, connection rates at the receiving
// end (or the sending end when the receiver reports none), the fullest receiver's queue and
// NiFi's fill levels, stale figures, elements no longer in the release.
import test from 'ava';
import type { StackSpec } from '../../compiler/index.js';
import { buildTopView, fillLevel, STALE_AFTER_MS } from '../../hq/deploy/top.js';
import type { ElementMetrics, PortMetrics } from '../../launcher/index.js';

const now = Date.parse('2026-12-03T12:00:10.000Z');
const ago = (ms: number) => new Date(now - ms).toISOString();

const spec = {
  name: 'flow', env: {}, classes: [],
  nodes: [{ name: 'api', type: 'web' }],
  elements: [
    { name: 'source', class: 'gen', config: {}, memory: 64, scale: 1 },
    { name: 'parse', class: 'parser', config: {}, memory: 64, scale: 2 },
    { name: 'sink', class: 'store', config: {}, memory: 64, scale: 1 },
    { name: 'lookup', class: 'dict', config: {}, memory: 64, scale: 1 },
  ],
  connections: [
    { kind: 'push', from: { name: 'source', port: 'out' }, to: { name: 'parse', port: 'in' } },
    { kind: 'push', from: { name: 'parse', port: 'out' }, to: { name: 'sink', port: 'in' } },
    { kind: 'push', from: { name: 'sink', port: 'out' }, to: { name: 'api', port: 'events' } },
    { kind: 'query', from: { name: 'parse', port: 'ask' }, to: { name: 'lookup', port: 'answer' } },
  ],
} as unknown as StackSpec;

const inPort = (rate: number, queued: number, queueLimit: number | undefined, backpressure = false, more: Partial<PortMetrics> = {}): PortMetrics => ({
  kind: 'push', dir: 'in', rate, total: rate * 10, queued, ...(queueLimit !== undefined && { queueLimit }), backpressure, ...more,
});
const outPort = (rate: number): PortMetrics => ({ kind: 'push', dir: 'out', rate, total: rate * 10 });

const record = (element: string, replica: number, ageMs: number, rate: number, busy: number, ports: Record<string, PortMetrics>): ElementMetrics => ({
  stack: 'flow', element, replica, server: `q-${replica}`, incarnation: `${element}-${replica}-a`, at: ago(ageMs), intervalMs: 1000,
  processed: rate * 10, busySeconds: busy * 10, busy, rate, ports,
});

const records: ElementMetrics[] = [
  record('source', 1, 400, 0, 0.1, { out: outPort(200) }),
  // Listed out of order: instances come sorted by replica.
  record('parse', 2, 900, 90, 0.9, { in: inPort(90, 70, 100), out: outPort(88), ask: { kind: 'query', dir: 'out', rate: 5, total: 50 } }),
  record('parse', 1, 300, 110, 0.7, { in: inPort(110, 95, 100, true), out: outPort(108), ask: { kind: 'query', dir: 'out', rate: 6, total: 60 } }),
  record('sink', 1, 200, 196, 0.3, { in: inPort(196, 10, 100), out: outPort(196) }),
  // lookup's only record is stale: its sums come from it, marked stale.
  record('lookup', 1, 8000, 11, 0.05, { answer: inPort(11, 0, 50, false, { kind: 'query', queryRate: 11, p50Ms: 2, p99Ms: 9 }) }),
  // An element the release no longer has, still reporting.
  record('old', 1, 100, 3, 0.2, { in: inPort(3, 0, undefined) }),
];

test('fixed data: each element sums its instances; instances sorted, with age and server; unknown elements last', (t) => {
  const view = buildTopView('flow', spec, 'v4', records, now);
  t.is(view.stack, 'flow');
  t.is(view.release, 'v4');
  t.is(view.at, '2026-12-03T12:00:10.000Z');
  t.is(view.staleAfterMs, STALE_AFTER_MS);
  t.deepEqual(view.elements.map((e) => [e.name, e.class, e.scale, e.rate, e.busy, e.stale, e.instances.length]), [
    ['source', 'gen', 1, 0, 0.1, false, 1],
    ['parse', 'parser', 2, 200, 0.8, false, 2],
    ['sink', 'store', 1, 196, 0.3, false, 1],
    ['lookup', 'dict', 1, 11, 0.05, true, 1],
    ['old', '-', 0, 3, 0.2, false, 1],
  ]);
  const parse = view.elements[1]!;
  t.deepEqual(parse.instances.map((i) => [i.replica, i.server, i.rate, i.busy, i.ageMs, i.stale, i.incarnation]), [
    [1, 'q-1', 110, 0.7, 300, false, 'parse-1-a'],
    [2, 'q-2', 90, 0.9, 900, false, 'parse-2-a'],
  ]);
  t.is(view.elements[3]!.instances[0]!.stale, true);
});

test('fixed data: connections read at the receiving in port, else the sending out port; the fullest receiver\'s queue; backpressure', (t) => {
  const view = buildTopView('flow', spec, 'v4', records, now);
  const [toParse, toSink, toApi, ask] = view.connections;
  // Rate: the in port over parse's two instances; queue: the fuller one (95/100), which holds back.
  t.like(toParse, { kind: 'push', rate: 200, rateAt: 'in', queued: 95, queueLimit: 100, fill: 0.95, level: 'high', backpressure: true, stale: false });
  t.like(toSink, { rate: 196, rateAt: 'in', queued: 10, queueLimit: 100, fill: 0.1, level: 'low', backpressure: false });
  // A node reports nothing: the sender's out port, no queue.
  t.like(toApi, { rate: 196, rateAt: 'out', queued: null, queueLimit: null, fill: null, level: null, backpressure: false, stale: false });
  // A query: queries per second and latency at the receiver, whose figures are stale.
  t.like(ask, { kind: 'query', rate: 11, rateAt: 'in', queued: 0, queueLimit: 50, fill: 0, level: 'low', p50Ms: 2, p99Ms: 9, stale: true });
});

test('fixed data: a stale instance beside a fresh one is listed but left out of the sums', (t) => {
  const view = buildTopView('flow', spec, 'v4', [
    record('parse', 1, 300, 110, 0.7, { in: inPort(110, 20, 100) }),
    record('parse', 2, STALE_AFTER_MS + 1, 90, 0.9, { in: inPort(90, 99, 100, true) }),
  ], now);
  const parse = view.elements.find((e) => e.name === 'parse')!;
  t.like(parse, { rate: 110, busy: 0.7, stale: false });
  t.deepEqual(parse.instances.map((i) => i.stale), [false, true]);
  t.like(view.connections[0], { rate: 110, queued: 20, fill: 0.2, backpressure: false, stale: false });
});

test('fixed data: no records and no release: elements without figures, connections unknown', (t) => {
  const view = buildTopView('flow', spec, 'v1', [], now);
  t.deepEqual(view.elements.map((e) => [e.name, e.rate, e.busy, e.stale, e.instances]), [
    ['source', null, null, false, []], ['parse', null, null, false, []], ['sink', null, null, false, []], ['lookup', null, null, false, []],
  ]);
  t.true(view.connections.every((c) => c.rate === null && c.rateAt === null && c.queued === null && c.level === null && !c.backpressure));
  const bare = buildTopView('flow', undefined, '-', [], now);
  t.deepEqual([bare.elements, bare.connections], [[], []]);
});

test('NiFi\'s levels: under 60 % low, 60 to 85 % mid, over 85 % high', (t) => {
  t.deepEqual([0, 0.59, 0.6, 0.85, 0.851, 1, null].map(fillLevel), ['low', 'low', 'mid', 'mid', 'high', 'high', null]);
});
