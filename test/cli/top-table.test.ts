// `quarry top`'s screen from a fixed TopView: elements with their instances, stale figures,
// connections with their queue's fill coloured by NiFi's thresholds (green under 60 %,
// yellow 60–85 %, red over 85 %) and marked `!` so that it reads without colour.
import test from 'ava';
import { rateText, topText } from '../../cli/commands/top.js';
import type { TopConnection, TopView } from '../../hq/index.js';

const port = { kind: 'push' as const, dir: 'in' as const, rate: 1, total: 1 };
const conn = (to: string, more: Partial<TopConnection>): TopConnection => ({
  kind: 'push', from: { name: 'source', port: 'out' }, to: { name: to, port: 'in' }, rate: 10, rateAt: 'in',
  queued: null, queueLimit: null, fill: null, level: null, backpressure: false, stale: false, ...more,
});

const view: TopView = {
  stack: 'flow', at: '2026-12-03T12:00:10.000Z', release: 'v4', staleAfterMs: 5000,
  elements: [
    {
      name: 'parse', class: 'parser', scale: 2, rate: 200, busy: 0.8, stale: false, instances: [
        { replica: 1, server: 'q-1', rate: 110, busy: 0.7, incarnation: 'a', at: '2026-12-03T12:00:09.700Z', ageMs: 300, stale: false, ports: { in: port } },
        { replica: 2, server: 'q-2', rate: 90, busy: 0.9, incarnation: 'b', at: '2026-12-03T12:00:02.000Z', ageMs: 8000, stale: true, ports: { in: port } },
      ],
    },
    { name: 'sink', class: 'store', scale: 1, rate: null, busy: null, stale: false, instances: [] },
  ],
  connections: [
    conn('low', { queued: 10, queueLimit: 100, fill: 0.1, level: 'low' }),
    conn('mid', { queued: 70, queueLimit: 100, fill: 0.7, level: 'mid' }),
    conn('high', { queued: 90, queueLimit: 100, fill: 0.9, level: 'high' }),
    conn('held', { queued: 40, queueLimit: 100, fill: 0.4, level: 'low', backpressure: true }),
    conn('api', { rate: 12345, rateAt: 'out', stale: true }),
    conn('ask', { kind: 'query', rate: 4.25, queued: 0, queueLimit: 50, fill: 0, level: 'low', p50Ms: 2, p99Ms: 9 }),
  ],
};

test('fixed TopView, no colour: elements, instances (stale marked), connections with fill and the ! mark', (t) => {
  t.is(topText(view, { color: false }),
    'flow v4  2026-12-03 12:00:10Z\n' +
    '\n' +
    'ELEMENT    CLASS   UP   SERVER  RATE/s  BUSY  FIGURES\n' +
    'parse      parser  1/2          200     80%\n' +
    '  parse.1               q-1     110     70%   0s\n' +
    '  parse.2               q-2     90.0    90%   8s stale\n' +
    'sink       store   0/1          -       -     no figures\n' +
    '\n' +
    'CONNECTION             KIND   RATE/s       QUEUE   FILL\n' +
    'source.out -> low.in   push   10.0         10/100  10%\n' +
    'source.out -> mid.in   push   10.0         70/100  70%\n' +
    'source.out -> high.in  push   10.0         90/100  90% !\n' +
    'source.out -> held.in  push   10.0         40/100  40% !\n' +
    'source.out -> api.in   push   12.3k stale  -       -\n' +
    'source.out => ask.in   query  4.3          0/50    0% p50 2ms p99 9ms\n');
});

test('fixed TopView, colour: green under 60 %, yellow 60–85 %, red over 85 %; stale rows dimmed; the columns still line up', (t) => {
  const text = topText(view, { color: true });
  const line = (to: string) => text.split('\n').find((l) => l.includes(`-> ${to}.in`))!;
  t.true(line('low').endsWith('\x1b[32m10%\x1b[0m'));
  t.true(line('mid').endsWith('\x1b[33m70%\x1b[0m'));
  t.true(line('high').endsWith('\x1b[31m90% !\x1b[0m'));
  // Backpressure below 85 %: the mark, in the colour of its fill.
  t.true(line('held').endsWith('\x1b[32m40% !\x1b[0m'));
  t.true(line('api').endsWith('  -'));
  t.true(text.includes('\x1b[2m  parse.2               q-2     90.0    90%   8s stale\x1b[0m'));
  // Without the colour codes it is the plain text.
  t.is(text.replace(/\x1b\[\d+m/g, ''), topText(view, { color: false }));
});

test('figures HQ could not read are said; a view with no elements says so', (t) => {
  const text = topText({ ...view, elements: [], connections: [], unavailable: 'the metrics could not be read from etcd within 2 s' }, { color: false });
  t.is(text, 'flow v4  2026-12-03 12:00:10Z\nno figures: the metrics could not be read from etcd within 2 s\n\nno elements\n');
});

test('rates: whole numbers from 100, one decimal below, k from 10 000, - unknown', (t) => {
  t.deepEqual([0, 0.04, 4.5, 99.94, 100, 9999, 12345, null, undefined].map(rateText), ['0', '0.0', '4.5', '99.9', '100', '9999', '12.3k', '-', '-']);
});
