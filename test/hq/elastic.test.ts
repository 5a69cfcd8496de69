// Autoscale end to end (issue 17, part 3): a small-mode HQ with real etcd, docker and git push
// runs test/fixtures/elastic (a paced source, a slow hash-sharded worker of ~100 logs/s per
// member, a counting sink) under a step up and a step down of the input. HQ's own controller
// loop grows the worker during the high phase and shrinks it after the drop, each change a
// release with the reason 'autoscale'; the sink then has every log the source sent, once, in
// order per key, and no key was handled by two members at once. No speed is asserted: the
// timeouts are generous, the figures are in the test's log.
import test from 'ava';
import Docker from 'dockerode';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startControl, type ControlHandle, type ReleaseInfo } from '../../hq/index.js';
import { repoRoot } from '../support/cli.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { until } from '../support/until.js';
import { commitAll, push, removeStacks, startTestHq, uniqueStack, type TestHq } from './harness.js';
import { sentAt, type Count, type Feed } from '../../bench/elastic-lines.js';

/** [seconds, logs/s]: a low start, a step to three members' worth, a drop to a fraction of one. */
const SCHEDULE: Array<[number, number]> = [[15, 50], [60, 300], [80, 30]];
const HIGH = SCHEDULE[1]![1];
const KEYS = 1024;
const stepUpS = SCHEDULE[0]![0];
const stepDownS = stepUpS + SCHEDULE[1]![0];
const endS = stepDownS + SCHEDULE[2]![0];

const docker = new Docker();
let etcd: TestEtcd;
let control: ControlHandle;
let t: TestHq;
const stacks: string[] = [];
/** HQ's log, each line with when it was written. */
const hqLog: Array<{ at: number; line: string }> = [];

test.before(async () => {
  etcd = await startEtcd();
  let handle: ControlHandle | undefined;
  t = await startTestHq({ onRelease: (...args) => handle!.onRelease(...args) });
  // The controller's defaults (warm-up 10 s, lull 30 s, every second): the schedule leaves room for them.
  handle = await startControl({ home: t.home, etcd: etcd.client, docker, log: (line) => hqLog.push({ at: Date.now(), line }), drainMs: 300 });
  control = handle;
});

test.after.always(async () => {
  await control?.close();
  await removeStacks(stacks);
  await t?.close();
  await etcd?.stop();
});


/** The `{"feed": …}` and `{"count": …}` lines the two containers printed, by time; read every second from their last lines. */
function watchLines(stack: string) {
  const feed = new Map<number, Feed>();
  const count = new Map<number, Count>();
  let stopped = false;
  const read = async (name: 'feed' | 'count') => {
    const ac = new AbortController();
    await control.logs(stack, name, { follow: false, tail: 6 }, (l) => {
      if (!l.text.startsWith('{')) return;
      try {
        const parsed = JSON.parse(l.text) as { feed?: Feed; count?: Count };
        if (parsed.feed) feed.set(parsed.feed.at, parsed.feed);
        if (parsed.count) count.set(parsed.count.at, parsed.count);
      } catch {
        // not one of ours
      }
    }, ac.signal);
  };
  const loop = (async () => {
    while (!stopped) {
      await Promise.all([read('feed'), read('count')]).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const sorted = <T extends { at: number }>(m: Map<number, T>) => [...m.values()].sort((a, b) => a.at - b.at);
  return {
    feeds: () => sorted(feed),
    counts: () => sorted(count),
    lastFeed: () => sorted(feed).at(-1),
    lastCount: () => sorted(count).at(-1),
    async stop() {
      stopped = true;
      await loop;
    },
  };
}


test('autoscale: the worker grows under a step up, carries it, shrinks after the drop; nothing lost, duplicated, reordered or handled twice at once', async (tt) => {
  tt.timeout(8 * 60_000);
  const stack = uniqueStack('elastic');
  stacks.push(stack);
  const repo = join(t.dir, 'elastic');
  cpSync(join(repoRoot, 'test', 'fixtures', 'elastic'), repo, { recursive: true });
  // The stack takes the name it is pushed to; the test's schedule.
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(/^name:.*\n/m, ''));
  const topology = join(repo, 'topology.yml');
  // 1024 keys, not 64: 64 keys hash unevenly enough over 4 members (the size 300 logs/s
  // needs) that the busiest one gets a third of them and cannot keep up (docs/autoscale.md, "Skew").
  writeFileSync(topology, readFileSync(topology, 'utf8')
    .replace(/schedule: \[\[.*?\]\]/, `schedule: ${JSON.stringify(SCHEDULE)}`).replace(/keys: \d+/, `keys: ${KEYS}`));
  tt.regex(readFileSync(topology, 'utf8'), new RegExp(`schedule: ${JSON.stringify(SCHEDULE).replace(/[[\]]/g, '\\$&')}, keys: ${KEYS} `));
  await commitAll(repo, 'elastic', true);

  const pushed = await push(t, repo, stack);
  tt.is(pushed.code, 0, pushed.stderr);
  const lines = watchLines(stack);
  try {
    // When the source began its schedule: its first line comes a second after it starts.
    const first = await until('the source\'s first line', async () => lines.feeds()[0], 60_000);
    const t0 = first.at - 1000;
    const at = (ms: number) => `${((ms - t0) / 1000).toFixed(1)} s`;
    tt.log(`${stack}: the source began at ${new Date(t0).toISOString()}; step up at ${stepUpS} s, down at ${stepDownS} s, end at ${endS} s`);

    const autoscaled = async () => (await control.releases(stack)).filter((r) => r.reason === 'autoscale').reverse();
    // ── the step up: a release with the reason 'autoscale' grows work ─────────────────────
    const grown = await until('an autoscale release that grows work', async () => (await autoscaled()).find((r) => (r.scale.work ?? 1) > 1),
      Math.max(10_000, (stepDownS + 30) * 1000 - (Date.now() - t0)));
    const grownAt = Date.parse(grown.at);
    tt.log(`v${grown.version} at ${at(grownAt)}: ${grown.description} (work ${grown.scale.work})`);
    tt.true(grownAt > t0 + stepUpS * 1000, 'it grows after the step, not before');
    tt.regex(grown.description, /^autoscale work 1 → \d+/);

    // ── the drop: a later autoscale release shrinks work ──────────────────────────────────
    // A shrink the drop explains comes after a lull (30 s, judged in 5 s slices) and goes to what
    // 30 logs/s needs: one member, at most one spare. (The controller may also shrink an
    // overshoot of the high phase, as late as the drop itself, or on a lull that straddles it.)
    const shrunk = await until('an autoscale release after the drop that shrinks work to at most 2', async () => {
      const list = await autoscaled();
      return list.find((r, i) => i > 0 && Date.parse(r.at) > t0 + (stepDownS + 20) * 1000 && (r.scale.work ?? 9) <= 2 &&
        (r.scale.work ?? 1) < (list[i - 1]!.scale.work ?? 1));
    }, Math.max(10_000, (endS + 30) * 1000 - (Date.now() - t0)));
    const shrunkAt = Date.parse(shrunk.at);
    tt.log(`v${shrunk.version} at ${at(shrunkAt)}: ${shrunk.description} (work ${shrunk.scale.work})`);

    // ── the end: the source is done; what the sink counted ────────────────────────────────
    const done = await until('the source done', async () => lines.feeds().find((f) => f.state === 'done'), Math.max(10_000, (endS + 60) * 1000 - (Date.now() - t0)));
    const final = await until(`the sink's count reaching the ${done.sent} logs sent`, async () => {
      const c = lines.lastCount();
      return c && c.at > done.at && c.distinct >= done.sent ? c : undefined;
    }, 60_000).catch(() => lines.lastCount());
    tt.log(`the source sent ${done.sent}; the sink: ${JSON.stringify(final)}`);

    // While it was big, the sink carried the input: the best 10 s of the sink's distinct growth
    // after the growth and before the drop, and its smallest lag behind the source then (what the
    // source had sent by the time of a sink line, between its lines around it, less the sink's count).
    const counts = lines.counts();
    const feeds = lines.feeds();
    const high = counts.filter((c) => c.at >= grownAt && c.at <= t0 + stepDownS * 1000 + 2000);
    let bestRate = 0;
    for (const a of high) {
      const b = high.find((c) => c.at >= a.at + 10_000);
      if (b) bestRate = Math.max(bestRate, ((b.distinct - a.distinct) * 1000) / (b.at - a.at));
    }
    let bestLag = Infinity;
    for (const c of high) {
      const sent = sentAt(feeds, c.at);
      if (sent !== undefined) bestLag = Math.min(bestLag, Math.round(sent - c.distinct));
    }
    tt.log(`after the growth: the sink's best 10 s carried ${bestRate.toFixed(0)} logs/s of ${HIGH} offered; its smallest lag behind the source ${bestLag} logs`);
    const decisions = hqLog.filter((l) => l.line.startsWith(`${stack}: autoscale:`));
    for (const l of decisions) tt.log(`hq ${at(l.at)}: ${l.line}`);
    const all = await autoscaled();
    tt.log(`autoscale releases: ${all.map((r: ReleaseInfo) => `v${r.version} ${at(Date.parse(r.at))} ${r.description}`).join('; ')}`);

    tt.true(bestRate >= 0.9 * HIGH, `the sink carried ${bestRate.toFixed(0)} logs/s at best, ${HIGH} offered`);
    tt.true(bestLag <= 2 * HIGH, `the sink kept within 2 s of input of the source at some point (smallest lag ${bestLag} logs)`);
    // HQ's log: each change with the offered and the true rate.
    tt.true(decisions.some((l) => /work 1 → \d+: offered [\d.]+\/s.*true rate [\d.]+\/s per instance/.test(l.line)), 'the growth\'s line');
    tt.true(decisions.some((l) => /work \d+ → \d+: offered at most [\d.]+\/s.*true rate [\d.]+\/s per instance/.test(l.line)), 'the shrink\'s line');
    tt.true(all.every((r) => (r.scale.work ?? 0) >= 1 && (r.scale.work ?? 0) <= 6), 'within the shard\'s 1..6');

    // Once the source is done, the sink has every log it sent: once each, each key in order,
    // and no key was handled by two members at once (the re-shard barrier).
    tt.truthy(final);
    tt.is(final!.distinct, done.sent, 'nothing lost');
    tt.is(final!.maxId, done.sent - 1);
    tt.is(final!.duplicates, 0, 'nothing handled twice');
    tt.is(final!.total, done.sent);
    tt.is(final!.outOfOrder, 0, 'each key in order');
    tt.is(final!.overlaps, 0, 'no key on two members at once');
  } finally {
    await lines.stop();
    const tail = hqLog.filter((l) => l.line.startsWith(stack));
    if (tt.passed === false) for (const l of tail.slice(-60)) tt.log(`hq ${new Date(l.at).toISOString()} ${l.line}`);
  }
});
