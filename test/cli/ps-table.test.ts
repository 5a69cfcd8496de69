// `quarry ps`'s table: RESTARTS (a count, `?` when HQ could not read it, `-` from an HQ that
// does not count) and LAST EXIT (code and how long ago, or `-`).
import test from 'ava';
import { ago, psTable } from '../../cli/commands/ps.js';
import type { PsRow } from '../../hq/index.js';

const now = Date.parse('2026-12-03T12:00:00.000Z');
const row = (container: string, more: Partial<PsRow>): PsRow => ({
  stack: 'demo', name: 'worker', kind: 'worker', container, server: 'local', state: 'running', health: '-', release: 'v2', restarts: 0, ...more,
});

test('restarts and the last exit, aligned; unknown is ?, never died is -', (t) => {
  const rows = [
    row('demo.worker.1', { restarts: 2, lastExit: { code: 137, at: '2026-12-03T11:58:00.000Z' } }),
    row('demo.worker.2', { state: 'failed', restarts: 5, lastExit: { code: 3, at: '2026-12-03T11:59:20.000Z' } }),
    row('demo.worker.3', { restarts: null }),
    row('demo.web.1', { kind: 'web', health: 'healthy', address: '127.0.0.1:49151' }),
  ];
  t.is(psTable(rows, now),
    'CONTAINER      KIND    STATE    HEALTH   RESTARTS  LAST EXIT   RATE  RELEASE  SERVER  ADDRESS\n' +
    'demo.worker.1  worker  running  -        2         137 2m ago  -     v2       local   -\n' +
    'demo.worker.2  worker  failed   -        5         3 40s ago   -     v2       local   -\n' +
    'demo.worker.3  worker  running  -        ?         -           -     v2       local   -\n' +
    'demo.web.1     web     running  healthy  0         -           -     v2       local   127.0.0.1:49151\n');
  // An older HQ sends no count at all.
  const { restarts: _restarts, ...old } = row('demo.worker.4', {});
  t.regex(psTable([old as PsRow], now), /^demo\.worker\.4 +worker +running +- +- +- +- +v2/m);
});

test('RATE: an element\'s logs per second from its metrics, - with no fresh figures and for nodes', (t) => {
  const rows = [
    row('demo.parse.1', { name: 'parse', kind: 'element', rate: 120.4 }),
    row('demo.parse.2', { name: 'parse', kind: 'element', rate: 4.5 }),
    row('demo.parse.3', { name: 'parse', kind: 'element', rate: 0 }),
    row('demo.parse.4', { name: 'parse', kind: 'element', rate: null }),
    row('demo.web.1', { kind: 'web' }),
  ];
  const rates = psTable(rows, now).split('\n').slice(1, -1).map((l) => l.split(/ {2,}/)[6]);
  t.deepEqual(rates, ['120', '4.5', '0', '-', '-']);
  t.regex(psTable(rows, now), /^CONTAINER +KIND +STATE +HEALTH +RESTARTS +LAST EXIT +RATE +RELEASE/);
});

test('how long ago: seconds, minutes, hours, days', (t) => {
  t.deepEqual([0, 500, 40_000, 119_000, 3_600_000, 3 * 86_400_000].map((ms) => ago(now - ms, now)), ['just now', 'just now', '40s ago', '1m ago', '1h ago', '3d ago']);
  t.is(ago(Number.NaN, now), '?');
});
