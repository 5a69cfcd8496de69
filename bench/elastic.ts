/**
 * bench:elastic — how HQ's autoscale controller sizes a slow load shard under a step change of
 * its input (issue 17, part 3). HQ in this process in small mode (its own etcd, the local docker
 * engine), test/fixtures/elastic pushed over git: a paced source `feed`, a slow hash-sharded
 * `work` (~100 logs/s per member, asleep, not burning CPU; shard max raised to 8), a counting sink.
 * The source sends LOW logs/s, then steps to HIGH, then drops to DOWN, then stops; the controller
 * runs with its defaults (warm-up 10 s, lull 30 s, every second).
 *
 *   steps             autoscale releases from the step up to the drop (goal: ≤ 2)
 *   instances         work's size at the drop (the end of the high phase)
 *   optimal           the carrying size ceil(HIGH ÷ true rate per member); the true rate is measured
 *                     (Σ Δprocessed ÷ Σ Δbusy seconds of work's members over the high phase, from
 *                     the metrics records in etcd), not assumed (goal: instances ≤ optimal + 1,
 *                     never more than optimal + 1 during the phase: maxInstances)
 *   throughputRatio   carried ÷ offered over the last MEASURE_S of the high phase: carried from the
 *                     sink's distinct count growth, offered from the source's sent growth (goal ≥ 0.95);
 *                     carriedOfSchedule divides by HIGH instead (the source falls behind its schedule
 *                     while backpressure holds it back), feedBehind is how far behind it was at the drop
 *   convergeSeconds   from the step up to the last autoscale release before the drop
 *   down              the same after the drop: steps, size, optimal, seconds to the first and the last release
 *   also              maxInstances (work's largest size in the high phase), perMemberRate, hottestShare (the
 *                     busiest member's share of work's load at the drop) and sizeCarries (perMemberRate ÷
 *                     hottestShare: what that size carries with the hash's spread), offered and
 *                     carried (logs/s), offeredSaid (the offered rates the controller's lines gave after
 *                     the step), sizes (after each step), sizeAtStep and stepsBefore (a change in the low
 *                     phase: at 80 logs/s one member is 81 % busy, above the 80 % target, so it grows to 2)
 *   lost, duplicates, outOfOrder, overlaps   the sink's figures once the source is done (all 0)
 *
 * Progress on stderr; last stdout line: JSON. Overrides: BENCH_ELASTIC_LOW=80, _HIGH=450,
 * _DOWN=120 (logs/s), _LOW_S=20, _HIGH_S=150, _DOWN_S=90 (seconds; _DOWN_S=0: no step down),
 * _MAX=8 (the shard's max), _KEYS=4096 (distinct hash keys; the fixture has 64), _MEASURE_S=30; BENCH_ELASTIC_LOG=FILE writes HQ's log;
 * BENCH_ELASTIC_VERBOSE=1 shows it as it goes.
 *
 *   npm run bench:elastic
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import { HomeLayout } from '../home/index.js';
import { addAuthorizedKey, startControl, startHq, startOwnEtcd, type ControlHandle, type Hq, type OwnEtcd, type ReleaseInfo } from '../hq/index.js';
import type { ElementMetrics } from '../launcher/index.js';
import { benchGitEnv, removeStackContainers, removeStackImages, sleep, until } from './example.js';
import { sentAt, type Count, type Feed } from './elastic-lines.js';

const num = (name: string, fallback: number) => {
  const v = Number(process.env[`BENCH_ELASTIC_${name}`] ?? fallback);
  if (!Number.isFinite(v) || v < 0) throw new Error(`BENCH_ELASTIC_${name} must be a number ≥ 0`);
  return v;
};
const LOW = num('LOW', 80);
const HIGH = num('HIGH', 450);
const DOWN = num('DOWN', 120);
const LOW_S = num('LOW_S', 20);
const HIGH_S = num('HIGH_S', 150);
const DOWN_S = num('DOWN_S', 90);
const MAX = num('MAX', 8);
const MEASURE_S = num('MEASURE_S', 30);
/** Distinct values of the hash key: with the fixture's 64, rendezvous hashing gives the busiest of 6 members a quarter of them (docs/bench.md). */
const KEYS = num('KEYS', 4096);
const SCHEDULE: Array<[number, number]> = [[LOW_S, LOW], [HIGH_S, HIGH], ...(DOWN_S > 0 ? [[DOWN_S, DOWN] as [number, number]] : [])];
const STEP_MS = LOW_S * 1000;
const DROP_MS = (LOW_S + HIGH_S) * 1000;
const END_MS = SCHEDULE.reduce((s, [sec]) => s + sec, 0) * 1000;

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const STACK = `benchelastic-${randomBytes(3).toString('hex')}`;
const docker = new Docker();
const dir = mkdtempSync(join(tmpdir(), 'quarry-bench-elastic-'));
const started = Date.now();
const say = (line: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

/** One reading of one work member's counters (a member's life: `replica/incarnation`). */
interface Reading { at: number; processed: number; busySeconds: number }

const hqLog: Array<{ at: number; line: string }> = [];

/** `git push`, without blocking this process's event loop (HQ answers it here): git's stderr. */
const gitPush = (url: string, cwd: string, env: NodeJS.ProcessEnv) => new Promise<string>((resolve, reject) => {
  const child = spawn('git', ['push', url, 'main'], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
  child.on('error', reject);
  child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`git push failed (exit ${code}):\n${text}`))));
});

/** Logs per second of `value` between the first and the last of `xs` within [from, to] (ms). */
function rateOver<T extends { at: number }>(xs: T[], from: number, to: number, value: (x: T) => number): number | null {
  const inside = xs.filter((x) => x.at >= from && x.at <= to);
  if (inside.length < 2) return null;
  const a = inside[0]!;
  const b = inside.at(-1)!;
  return b.at > a.at ? ((value(b) - value(a)) * 1000) / (b.at - a.at) : null;
}

/** Logs the source's schedule has it send by `ms` after it began (what it sends when nothing holds it back). */
function scheduled(ms: number): number {
  let total = 0;
  let t = 0;
  for (const [sec, rate] of SCHEDULE) {
    const span = Math.min(Math.max(ms - t, 0), sec * 1000);
    total += Math.floor((span / 1000) * rate);
    t += sec * 1000;
  }
  return total;
}


const round = (x: number | null, digits = 1) => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));

async function main(): Promise<void> {
  const home = new HomeLayout(join(dir, 'home'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
  addAuthorizedKey(home, readFileSync(join(dir, 'key.pub'), 'utf8'), 'bench.pub');
  const log = (line: string) => {
    hqLog.push({ at: Date.now(), line });
    if (process.env.BENCH_ELASTIC_VERBOSE || (line.startsWith(`${STACK}: autoscale`))) say(`hq: ${line}`);
  };
  let etcdServer: OwnEtcd | undefined;
  let etcd: Etcd3 | undefined;
  let hq: Hq | undefined;
  let control: ControlHandle | undefined;
  let watching = true;
  let watcher: Promise<void> | undefined;
  try {
    say(`starting HQ in small mode; schedule ${JSON.stringify(SCHEDULE)} (logs/s), work's shard max ${MAX}`);
    etcdServer = await startOwnEtcd({ home, port: 0 });
    etcd = new Etcd3({ hosts: etcdServer.endpoint });
    hq = await startHq({ home: home.root, sshPort: 0, host: '127.0.0.1', log, onRelease: (...a) => control!.onRelease(...a) });
    control = await startControl({ home, etcd, docker, log });
    const c = control;
    const kv = etcd;

    // The fixture, named by the path it is pushed to, with the bench's schedule and a larger shard.
    const repo = join(dir, 'repo');
    cpSync(join(ROOT, 'test', 'fixtures', 'elastic'), repo, { recursive: true });
    const yml = join(repo, 'quarry.yml');
    writeFileSync(yml, readFileSync(yml, 'utf8').replace(/^name:.*\n/m, '').replace(/max_instances: \d+/, `max_instances: ${MAX + 4}`));
    const topologyFile = join(repo, 'topology.yml');
    const topology = readFileSync(topologyFile, 'utf8')
      .replace(/schedule: \[\[.*?\]\]/, `schedule: ${JSON.stringify(SCHEDULE)}`)
      .replace(/shard: \{ min: 1, max: \d+/, `shard: { min: 1, max: ${MAX}`)
      .replace(/keys: \d+/, `keys: ${KEYS}`);
    if (!topology.includes(JSON.stringify(SCHEDULE)) || !topology.includes(`max: ${MAX}`) || !topology.includes(`keys: ${KEYS} `)) throw new Error(`could not edit the fixture's topology:\n${topology}`);
    writeFileSync(topologyFile, topology);
    const env = benchGitEnv(join(dir, 'key'));
    for (const args of [['init', '-q', '-b', 'main'], ['add', '-A'], ['commit', '-q', '-m', 'elastic']]) execFileSync('git', args, { cwd: repo, env });

    say(`pushing ${STACK}`);
    const t0push = Date.now();
    await gitPush(`ssh://quarry@127.0.0.1:${hq.sshPort}/${STACK}`, repo, env);
    say(`pushed in ${((Date.now() - t0push) / 1000).toFixed(1)} s`);

    // What the source and the sink print (their last lines, every second) and work's members' counters.
    const feeds = new Map<number, Feed>();
    const counts = new Map<number, Count>();
    const readings = new Map<string, Reading[]>();
    /** The source's out port as its metrics records had it: what the controller reads the offered rate from (rate ÷ (1 − blocked)). */
    const feedOut: Array<{ at: number; rate: number; blocked: number | null }> = [];
    const readLines = (name: 'feed' | 'count') => c.logs(STACK, name, { follow: false, tail: 6 }, (l) => {
      if (!l.text.startsWith('{')) return;
      try {
        const p = JSON.parse(l.text) as { feed?: Feed; count?: Count };
        if (p.feed) feeds.set(p.feed.at, p.feed);
        if (p.count) counts.set(p.count.at, p.count);
      } catch {
        // not one of ours
      }
    }, new AbortController().signal);
    const readCounters = async () => {
      const records = await kv.getAll().prefix(`/quarry/stacks/${STACK}/metrics/`).strings();
      for (const text of Object.values(records)) {
        const m = JSON.parse(text) as ElementMetrics;
        if (m.element === 'feed') {
          const out = m.ports.out;
          const at = Date.parse(m.at);
          if (out && feedOut.at(-1)?.at !== at) feedOut.push({ at, rate: out.rate, blocked: out.blocked ?? null });
          continue;
        }
        if (m.element !== 'work') continue;
        const id = `${m.replica}/${m.incarnation}`;
        const at = Date.parse(m.at);
        let list = readings.get(id);
        if (list === undefined) readings.set(id, (list = []));
        if (list.at(-1)?.at !== at) list.push({ at, processed: m.processed, busySeconds: m.busySeconds });
      }
    };
    watcher = (async () => {
      while (watching) {
        const next = sleep(1000);
        await Promise.all([readLines('feed'), readLines('count'), readCounters()]).catch(() => undefined);
        await next;
      }
    })();
    const sorted = <T extends { at: number }>(m: Map<number, T>) => [...m.values()].sort((a, b) => a.at - b.at);

    const first = await until('the source\'s first line', 60_000, 200, async () => sorted(feeds)[0]);
    const t0 = first.at - 1000;
    const step = t0 + STEP_MS;
    const drop = t0 + DROP_MS;
    const end = t0 + END_MS;
    const at = (ms: number) => `${((ms - t0) / 1000).toFixed(1)} s`;
    say(`the source began at ${new Date(t0).toISOString()}: step up at ${LOW_S} s, drop at ${LOW_S + HIGH_S} s, end at ${END_MS / 1000} s`);

    // Progress every 5 s: what the source sent and the sink counted over the last 5 s, and work's size.
    let size = 1;
    let lastNote = 0;
    while (Date.now() < end + 2000 && !sorted(feeds).some((f) => f.state === 'done')) {
      await sleep(1000);
      const releases = await c.releases(STACK);
      size = releases[0]?.scale.work ?? size;
      if (Date.now() - lastNote >= 5000) {
        lastNote = Date.now();
        const f = sorted(feeds);
        const k = sorted(counts);
        const now = Date.now();
        const sent = rateOver(f, now - 6000, now, (x) => x.sent);
        const carried = rateOver(k, now - 6000, now, (x) => x.distinct);
        const last = k.filter((x) => x.at <= (f.at(-1)?.at ?? 0)).at(-1);
        const sentThen = last ? sentAt(f, last.at) : undefined;
        const lag = last && sentThen !== undefined ? Math.round(sentThen - last.distinct) : '-';
        say(`${at(now).padStart(7)}: sent ${sent?.toFixed(0) ?? '-'}/s (schedule ${Math.round(scheduled(now - t0) - scheduled(now - t0 - 1000))}/s), ` +
          `carried ${carried?.toFixed(0) ?? '-'}/s, sink behind the source by ${lag}, work ${size}`);
      }
    }
    const done = await until('the source done', 60_000, 500, async () => sorted(feeds).find((f) => f.state === 'done'));
    const final = await until(`the sink counting the ${done.sent} logs sent`, 60_000, 500, async () => {
      const k = sorted(counts).at(-1);
      return k && k.at > done.at + 2000 && k.distinct >= done.sent ? k : undefined;
    }).catch(() => sorted(counts).at(-1));
    watching = false;
    await watcher;

    // ── the figures ─────────────────────────────────────────────────────────────────────
    const releases = (await c.releases(STACK)).reverse();
    const auto = releases.filter((r) => r.reason === 'autoscale').map((r) => ({ at: Date.parse(r.at), size: r.scale.work ?? 0, r }));
    for (const a of auto) say(`  v${a.r.version} at ${at(a.at)}: ${a.r.description}`);
    const sizeAt = (ms: number) => releases.filter((r) => Date.parse(r.at) <= ms).at(-1)?.scale.work ?? 1;
    const before = auto.filter((a) => a.at <= step);
    const up = auto.filter((a) => a.at > step && a.at <= drop);
    const instances = sizeAt(drop);
    const maxInstances = Math.max(sizeAt(step), ...up.map((a) => a.size));
    const convergeSeconds = up.length > 0 ? round((up.at(-1)!.at - step) / 1000) : null;

    // The true rate per member: Σ Δprocessed ÷ Σ Δbusy over the high phase, each member's
    // consecutive readings of one life (a restart starts its counters again).
    const trueRate = (from: number, to: number) => {
      let processed = 0;
      let busy = 0;
      for (const list of readings.values()) {
        const inside = list.filter((x) => x.at >= from && x.at <= to);
        for (let i = 1; i < inside.length; i++) {
          const dp = inside[i]!.processed - inside[i - 1]!.processed;
          const db = inside[i]!.busySeconds - inside[i - 1]!.busySeconds;
          if (dp >= 0 && db >= 0) { processed += dp; busy += db; }
        }
      }
      return busy > 0 ? processed / busy : null;
    };
    const perMember = trueRate(step, drop);
    // How evenly the hash spread the load at the end of the high phase: the busiest member's share
    // of what work handled (members of one life throughout the window), and so what its size carries.
    const shares: number[] = [];
    for (const list of readings.values()) {
      const inside = list.filter((x) => x.at >= drop - MEASURE_S * 1000 && x.at <= drop);
      if (inside.length >= 2) shares.push(inside.at(-1)!.processed - inside[0]!.processed);
    }
    const handled = shares.reduce((a, b) => a + b, 0);
    const hottestShare = handled > 0 && shares.length === instances ? Math.max(...shares) / handled : null;
    const sizeCarries = perMember && hottestShare ? perMember / hottestShare : null;
    const optimal = perMember ? Math.ceil(HIGH / perMember) : null;

    const f = sorted(feeds);
    const k = sorted(counts);
    const from = drop - MEASURE_S * 1000;
    const offered = rateOver(f, from, drop, (x) => x.sent);
    const carried = rateOver(k, from, drop, (x) => x.distinct);
    const throughputRatio = offered && carried !== null ? carried / offered : null;
    const feedAtDrop = f.filter((x) => x.at <= drop).at(-1);
    const feedBehind = feedAtDrop ? scheduled(feedAtDrop.at - t0) - feedAtDrop.sent : null;
    say(`high phase: true rate ${perMember?.toFixed(1) ?? '-'} logs/s per member → optimal ${optimal ?? '-'} for ${HIGH}/s; ` +
      `work ${instances} at the drop (at most ${maxInstances}) after ${up.length} step(s), the last ${convergeSeconds ?? '-'} s after the step; ` +
      `its busiest member had ${hottestShare === null ? '-' : `${(hottestShare * 100).toFixed(1)} %`} of the load (even: ${(100 / instances).toFixed(1)} %), ` +
      `so ${instances} carry ${sizeCarries?.toFixed(0) ?? '-'} logs/s`);
    say(`last ${MEASURE_S} s of it: the source sent ${offered?.toFixed(0) ?? '-'}/s, the sink counted ${carried?.toFixed(0) ?? '-'}/s ` +
      `(ratio ${throughputRatio?.toFixed(3) ?? '-'}); the source was ${feedBehind ?? '-'} logs behind its schedule at the drop`);

    let down: Record<string, unknown> | null = null;
    if (DOWN_S > 0) {
      const shrink = auto.filter((a) => a.at > drop);
      const perMemberLow = trueRate(drop, end);
      const optimalDown = Math.ceil(DOWN / (perMember ?? 100));
      down = {
        steps: shrink.length, instances: sizeAt(end), optimal: optimalDown,
        seconds: shrink.length > 0 ? round((shrink.at(-1)!.at - drop) / 1000) : null,
        firstSeconds: shrink.length > 0 ? round((shrink[0]!.at - drop) / 1000) : null,
        perMemberRate: round(perMemberLow),
        sizes: shrink.map((a) => a.size),
      };
      say(`after the drop to ${DOWN}/s: ${shrink.length} step(s) to ${sizeAt(end)} (optimal ${optimalDown}), ` +
        `${down.firstSeconds ?? '-'} s to the first, ${down.seconds ?? '-'} s to the last`);
    }
    // The offered rates the controller's lines gave after the step, and what the source's out
    // port said meanwhile (the controller reads rate ÷ (1 − blocked) of it).
    const offeredSaid = hqLog.filter((l) => l.at > step && l.at <= drop && l.line.startsWith(`${STACK}: autoscale:`))
      .map((l) => Number(/offered (?:at most )?([\d.]+)\/s/.exec(l.line)?.[1] ?? NaN)).filter(Number.isFinite);
    const firstUp = up[0]?.at ?? drop;
    say(`the source's out port from the step to the first change after it (s: rate/s, blocked share → rate ÷ open share):`);
    for (const x of feedOut.filter((r) => r.at >= step - 2000 && r.at <= firstUp + 2000)) {
      say(`  ${at(x.at)}: ${x.rate.toFixed(0)}/s, blocked ${x.blocked?.toFixed(2) ?? '-'} → ${x.blocked === null ? '-' : (x.rate / Math.max(0.05, 1 - x.blocked)).toFixed(0)}/s`);
    }
    const lost = final ? done.sent - final.distinct : null;
    say(`the source sent ${done.sent}; the sink: ${JSON.stringify(final)}`);
    const goals = {
      steps: up.length <= 2,
      size: optimal !== null && instances >= optimal && instances <= optimal + 1,
      neverAboveOptimalPlusOne: optimal !== null && maxInstances <= optimal + 1,
      carried: throughputRatio !== null && throughputRatio >= 0.95,
    };
    if (lost !== 0 || final?.duplicates !== 0 || final?.outOfOrder !== 0 || final?.overlaps !== 0) {
      say('WRONG: the sink did not get every log once, in order per key, one member per key at a time');
      process.exitCode = 1;
    }
    say(`goals: ≤ 2 steps ${goals.steps ? 'met' : 'MISSED'}; right size ${goals.size ? 'met' : 'MISSED'}; ` +
      `never above optimal + 1 ${goals.neverAboveOptimalPlusOne ? 'met' : 'MISSED'}; ≥ 95 % carried ${goals.carried ? 'met' : 'MISSED'}`);

    console.log(JSON.stringify({
      steps: up.length, instances, optimal, throughputRatio: round(throughputRatio, 3), convergeSeconds,
      maxInstances, perMemberRate: round(perMember), hottestShare: round(hottestShare, 3), sizeCarries: round(sizeCarries, 0), keys: KEYS, offered: round(offered), carried: round(carried),
      carriedOfSchedule: round(carried !== null ? carried / HIGH : null, 3), feedBehind,
      offeredSaid, sizes: up.map((a) => a.size), sizeAtStep: sizeAt(step), stepsBefore: before.length, down,
      sent: done.sent, lost, duplicates: final?.duplicates ?? null, outOfOrder: final?.outOfOrder ?? null, overlaps: final?.overlaps ?? null,
      goals, schedule: SCHEDULE, max: MAX,
    }));
  } catch (err) {
    say(`failed: ${(err as Error).stack ?? String(err)}`);
    say(`HQ's last log lines:\n${hqLog.slice(-40).map((l) => `  ${new Date(l.at).toISOString()} ${l.line}`).join('\n')}`);
    process.exitCode = 1;
  } finally {
    watching = false;
    await watcher?.catch(() => undefined);
    if (process.env.BENCH_ELASTIC_LOG) writeFileSync(process.env.BENCH_ELASTIC_LOG, hqLog.map((l) => `${new Date(l.at).toISOString()} ${l.line}\n`).join(''));
    say('cleaning up');
    await control?.close().catch((err: Error) => say(`stopping HQ's control: ${err.message}`));
    await removeStackContainers(docker, STACK);
    await removeStackImages(docker, STACK);
    await hq?.close().catch(() => undefined);
    etcd?.close();
    await etcdServer?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    say('done');
  }
}

await main();
