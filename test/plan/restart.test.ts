// The restart policy a caretaker follows when a container dies: a table of (restart times,
// policy, now) → decision, and the policy's label. Pure.
import test from 'ava';
import {
  DEFAULT_RESTART, parseRestartLabel, restartDecision, restartLabel, type RestartDecision, type RestartPolicy,
} from '../../plan/index.js';

const policy: RestartPolicy = { attempts: 5, intervalMs: 60_000, delayMs: 1000, maxDelayMs: 3000 };
const now = 1_000_000;
const restart = (delayMs: number, attempt: number): RestartDecision => ({ action: 'restart', delayMs, attempt });

const cases: { name: string; previous: number[]; policy?: RestartPolicy; decision: RestartDecision }[] = [
  { name: 'the first death: at once', previous: [], decision: restart(0, 1) },
  { name: 'the second: after delayMs', previous: [now - 100], decision: restart(1000, 2) },
  { name: 'the third: twice that', previous: [now - 300, now - 100], decision: restart(2000, 3) },
  { name: 'the fourth: capped at maxDelayMs', previous: [now - 500, now - 300, now - 100], decision: restart(3000, 4) },
  { name: 'the fifth: still capped', previous: [now - 700, now - 500, now - 300, now - 100], decision: restart(3000, 5) },
  {
    name: 'attempts used up within the window: failed',
    previous: [now - 900, now - 700, now - 500, now - 300, now - 100],
    decision: { action: 'fail', reason: 'it died 6 times within 1 min (restart: attempts 5)' },
  },
  { name: 'restarts older than the window no longer count', previous: [now - 90_000, now - 80_000, now - 70_000, now - 61_000, now - 100], decision: restart(1000, 2) },
  { name: 'a restart exactly one window ago has left it', previous: [now - 60_000], decision: restart(0, 1) },
  { name: 'one just inside the window still counts', previous: [now - 59_999], decision: restart(1000, 2) },
  { name: 'the window slides: all old, at once again', previous: [now - 200_000, now - 150_000, now - 100_000, now - 70_000, now - 65_000], decision: restart(0, 1) },
  { name: 'a restart scheduled later than now does not count yet', previous: [now + 500], decision: restart(0, 1) },
  { name: 'the default: 5 in 5 min, waiting 0, 1, 2, 4, 8 s', previous: [now - 4, now - 3, now - 2, now - 1], policy: DEFAULT_RESTART, decision: restart(8000, 5) },
  { name: 'attempts 0: failed at the first death', previous: [], policy: { ...policy, attempts: 0 }, decision: { action: 'fail', reason: 'it died 1 times within 1 min (restart: attempts 0)' } },
  { name: 'a window in ms is said in ms', previous: [now - 10, now - 5], policy: { attempts: 2, intervalMs: 1500, delayMs: 200, maxDelayMs: 200 }, decision: { action: 'fail', reason: 'it died 3 times within 1500 ms (restart: attempts 2)' } },
  { name: 'a window in seconds is said in s', previous: [now - 10], policy: { attempts: 1, intervalMs: 30_000, delayMs: 0, maxDelayMs: 0 }, decision: { action: 'fail', reason: 'it died 2 times within 30 s (restart: attempts 1)' } },
  { name: 'a delay of 0 stays 0', previous: [now - 3, now - 2, now - 1], policy: { ...policy, delayMs: 0 }, decision: restart(0, 4) },
  {
    name: 'a delay of 0 after very many restarts is 0, not NaN',
    previous: Array.from({ length: 1100 }, (_, i) => now - i),
    policy: { attempts: 2000, intervalMs: 60_000, delayMs: 0, maxDelayMs: 5000 },
    decision: restart(0, 1101),
  },
  {
    name: 'very many restarts: the cap, not Infinity',
    previous: Array.from({ length: 1100 }, (_, i) => now - i),
    policy: { attempts: 2000, intervalMs: 60_000, delayMs: 10, maxDelayMs: 5000 },
    decision: restart(5000, 1101),
  },
];

for (const c of cases) {
  test(`restartDecision: ${c.name}`, (t) => {
    t.deepEqual(restartDecision(c.previous, c.policy ?? policy, now), c.decision);
  });
}

test('restartDecision: a crash loop walks 0, 1, 2, 3 (capped) s and then fails', (t) => {
  const times: number[] = [];
  const waits: number[] = [];
  let at = now;
  for (;;) {
    const d = restartDecision(times, policy, at);
    if (d.action === 'fail') break;
    waits.push(d.delayMs);
    at += d.delayMs;
    times.push(at);
    at += 50; // it dies 50 ms after each restart
  }
  t.deepEqual(waits, [0, 1000, 2000, 3000, 3000]);
});

const labels: { label: string | undefined; policy: RestartPolicy }[] = [
  { label: '5/300000/1000/60000', policy: DEFAULT_RESTART },
  { label: '2/60000/200/200', policy: { attempts: 2, intervalMs: 60_000, delayMs: 200, maxDelayMs: 200 } },
  { label: '0/0/0/0', policy: { attempts: 0, intervalMs: 0, delayMs: 0, maxDelayMs: 0 } },
  { label: undefined, policy: DEFAULT_RESTART },
  { label: '', policy: DEFAULT_RESTART },
  { label: '5/300000/1000', policy: DEFAULT_RESTART },
  { label: '5/300000/1000/60000/1', policy: DEFAULT_RESTART },
  { label: '5/-1/1000/60000', policy: DEFAULT_RESTART },
  { label: '5/1.5/1000/60000', policy: DEFAULT_RESTART },
  { label: '5//1000/60000', policy: DEFAULT_RESTART },
  { label: '///', policy: DEFAULT_RESTART },
  { label: '5/ 300/1000/60000', policy: DEFAULT_RESTART },
  { label: '0x5/300000/1000/60000', policy: DEFAULT_RESTART },
  { label: '1e3/300000/1000/60000', policy: DEFAULT_RESTART },
  { label: 'five/300000/1000/60000', policy: DEFAULT_RESTART },
  { label: '5/99999999999999999999/1000/60000', policy: DEFAULT_RESTART },
];

for (const c of labels) {
  test(`parseRestartLabel: ${JSON.stringify(c.label)}`, (t) => {
    t.deepEqual(parseRestartLabel(c.label), c.policy);
  });
}

test('restartLabel and parseRestartLabel round-trip', (t) => {
  for (const p of [DEFAULT_RESTART, policy, { attempts: 0, intervalMs: 1, delayMs: 0, maxDelayMs: 0 }, { attempts: 100, intervalMs: 86_400_000, delayMs: 250, maxDelayMs: 600_000 }]) {
    t.deepEqual(parseRestartLabel(restartLabel(p)), p);
  }
  t.is(restartLabel(DEFAULT_RESTART), '5/300000/1000/60000');
});
