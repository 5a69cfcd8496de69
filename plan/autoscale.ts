/**
 * The autoscale controller of load-sized shards (`shard: {min, max, by}` in the topology;
 * DESIGN.md, issue 17 part 3), as a pure decision: each element's policy, size, time of its
 * last change and the figures its members published go in; for each element, keep or scale
 * to N, with a one-line explanation, comes out. HQ (and the runner on one machine) calls it
 * about once a second and carries a change out through the normal plan (a SCALE, a release
 * whose reason says "autoscale").
 *
 * The model is DS2's (Kalavri et al., OSDI 2018): the rate one instance sustains is measured
 * from its busy time (logs processed ÷ busy seconds: the "true" rate, which does not depend
 * on how loaded the instance is), and the size that carries the offered rate at a target
 * utilisation is `ceil(offered ÷ (true rate × target))`, clamped to the shard's min and max.
 * Around it: a warm-up after each change, enough samples before any decision, prompt growth,
 * shrinking only after a lull that lasts longer the higher the class's `cost`, a dead band,
 * the stack's cap on element instances, and figures from a member that crashed never taken
 * at face value. docs/autoscale.md gives every rule with its numbers.
 *
 * No I/O and no clock: time comes in as `now` (ms, the clock the samples' `at` use).
 */
import { QuarryError } from '../errors/index.js';

/** An input the controller cannot decide on: a programming error of its caller, not a load. */
export class AutoscaleError extends QuarryError {}

/** How an element may be sized: its topology's `shard: {min, max}` and its class's `cost`. */
export interface AutoscalePolicy {
  /** The fewest members (`shard.min`, ≥ 0). */
  min: number;
  /** The most members (`shard.max`, ≥ min). */
  max: number;
  /**
   * The class's `cost` (element.yml): what shrinking costs, the state an instance holds.
   * 0 = stateless. The lull a shrink waits for is `lullMs × (1 + cost)`; below 0 (or not a
   * number) counts as 0.
   */
  cost: number;
}

/**
 * One reading of one member (an element instance), published about once a second at
 * `/quarry/stacks/<stack>/metrics/<element>/<replica>`. `processed` and `busySeconds` are
 * counters since the instance started, as the runtime keeps its counters: a reading that is
 * missed loses nothing (the next one covers it), and a restart shows as a counter that goes
 * back (or a new `incarnation`). `offeredPerSecond` and `queueDepth` are gauges: their value
 * now.
 */
export interface MetricSample {
  /** The member: its replica (the last part of the metrics key), stable across its restarts. */
  member: string;
  /** When it was read, ms, on the clock `now` is on. */
  at: number;
  /** Logs its handlers have finished since the instance started (a counter). */
  processed: number;
  /**
   * Seconds its handlers have been busy since the instance started (a counter): the busy
   * fraction (share of wall time spent in handlers) summed over wall time.
   */
  busySeconds: number;
  /**
   * The offered rate at this member, logs per second: what arrives at its in ports, counting
   * what queues up or is held back by backpressure (not only what it manages to take).
   */
  offeredPerSecond: number;
  /** Logs waiting in its incoming queues, summed over its in ports. */
  queueDepth: number;
  /**
   * The instance's life (the runtime's `incarnation`): a new value means it restarted and its
   * counters began again at 0. Optional; without it a restart is seen when a counter goes back.
   */
  incarnation?: string;
}

/** One load-sized element as the controller sees it. */
export interface AutoscaleElement {
  /** The element's name in the topology; unique within a call. */
  element: string;
  policy: AutoscalePolicy;
  /** The members it has now (what the current release runs). */
  size: number;
  /**
   * When its size last changed (ms): a scale, a deploy, its first start. Figures read before
   * `lastChange + warmupMs` are ignored. Undefined: no change known, every figure counts.
   */
  lastChange?: number;
  /** Its members' readings, any order; readings later than `now` are ignored. */
  samples: readonly MetricSample[];
}

/** One call: every load-sized element of one stack, at one moment. */
export interface AutoscaleInput {
  /** The time of the decision, ms. */
  now: number;
  elements: readonly AutoscaleElement[];
  /**
   * The stack's cap on element instances (quarry.yml); undefined: no cap. Growth stops at it;
   * the controller never shrinks an element to get under it.
   */
  cap?: number;
  /**
   * Element instances of the stack that are not in `elements` (fixed `scale`, single
   * members): they count against `cap`. Default 0.
   */
  others?: number;
}

/** The controller's settings; each has a default in `DEFAULT_AUTOSCALE`. */
export interface AutoscaleOptions {
  /** The busy fraction a size is chosen for: DS2's target utilisation, in (0, 1]. */
  targetUtilisation: number;
  /**
   * The most instances above the smallest size that carries the offered rate at full speed
   * (`ceil(offered ÷ true rate)`); bounds the headroom the target utilisation adds on large
   * shards. `Infinity`: DS2's size alone.
   */
  maxSpare: number;
  /** After a change of size, readings older than this are ignored (ms). */
  warmupMs: number;
  /** The window the offered rate is read over, and the length of a lull's slices (ms). */
  windowMs: number;
  /** The readings (≥ 2) a member needs within `windowMs` for its offered rate to count. */
  minSamples: number;
  /** The window the true rate per instance is measured over (ms). */
  rateWindowMs: number;
  /** The lull a stateless element (cost 0) waits for before it shrinks; × (1 + cost) (ms). */
  lullMs: number;
  /** The longest lull any cost asks for (ms). */
  maxLullMs: number;
  /**
   * The dead band: a shrink goes only to a size that would still carry the lull's highest
   * offered rate raised by this fraction (at most one instance more than that rate needs).
   */
  deadBand: number;
  /** A lull's queues may hold at most this many seconds of the current size's work. */
  backlogSeconds: number;
}

/**
 * Target 80 % busy, at most 1 spare instance, 10 s warm-up, offered rate over 5 s (3 readings
 * a member), true rate over 30 s, a lull of 30 s × (1 + cost) up to 10 min, a 10 % dead band,
 * at most 2 s of work queued in a lull.
 */
export const DEFAULT_AUTOSCALE: Readonly<AutoscaleOptions> = Object.freeze({
  targetUtilisation: 0.8,
  maxSpare: 1,
  warmupMs: 10_000,
  windowMs: 5_000,
  minSamples: 3,
  rateWindowMs: 30_000,
  lullMs: 30_000,
  maxLullMs: 600_000,
  deadBand: 0.1,
  backlogSeconds: 2,
});

/** What the controller decided for one element. */
export interface AutoscaleDecision {
  element: string;
  /** `keep`: `to` equals `from`; `scale`: carry out a SCALE from `from` to `to`. */
  action: 'keep' | 'scale';
  from: number;
  to: number;
  /**
   * One line for the log, naming the element, the offered rate, the true rate per instance,
   * the old and new size and why: `mid 2 → 4: offered 300/s, true rate 100/s per instance; 4
   * carry it at 75 % busy`.
   */
  reason: string;
  /** The offered rate it rests on (logs/s, the element's members summed), when read. */
  offered?: number;
  /** The true rate per instance (logs/s; Infinity when too fast to time), when measured. */
  ratePerInstance?: number;
  /** The size its rules ask for (within min and max; the size now while a shrink waits), before the stack's cap. */
  wanted?: number;
  /** True when the stack's cap held the element below `wanted`. */
  capBound?: boolean;
}

/** How long a lull must last before an element of this cost shrinks (ms). */
export function shrinkLullMs(cost: number, options: Partial<AutoscaleOptions> = {}): number {
  const o = { ...DEFAULT_AUTOSCALE, ...options };
  return Math.min(o.maxLullMs, o.lullMs * (1 + costOf(cost)));
}

/**
 * The decision for each element of `input.elements`, in the same order. Deterministic: the
 * same input gives the same decisions; the cap is shared by a rule that depends on the
 * figures and names only. Throws `AutoscaleError` on an input no load explains (a duplicate
 * element, min above max, a size that is not a whole number, settings out of range).
 */
export function autoscaleDecisions(input: AutoscaleInput, options: Partial<AutoscaleOptions> = {}): AutoscaleDecision[] {
  const o: AutoscaleOptions = { ...DEFAULT_AUTOSCALE, ...options };
  checkOptions(o);
  checkInput(input);
  const proposals = input.elements.map((e) => propose(e, input.now, o));
  return shareCap(proposals, input);
}

// ---------------------------------------------------------------------------------------

/** One element's decision before the stack's cap is shared. */
interface Proposal {
  element: string;
  from: number;
  to: number;
  /** A growth the cap may hold back; every other change (shrinks, moves into min..max) is made. */
  grows: boolean;
  reason: string;
  offered?: number;
  rate?: number;
  wanted?: number;
  /** For a growth: its line at the size the cap leaves it, with what the cap adds. */
  line?: (n: number, capNote: string) => string;
}

const EPSILON = 1e-9;

function propose(e: AutoscaleElement, now: number, o: AutoscaleOptions): Proposal {
  const { element: name, size } = e;
  const { min, max } = e.policy;
  const cost = costOf(e.policy.cost);
  const keep = (why: string, extra: Partial<Proposal> = {}): Proposal =>
    ({ element: name, from: size, to: size, grows: false, reason: `${name} keeps ${size}: ${why}`, ...extra });

  if (size < min || size > max) {
    const to = clamp(size, min, max);
    return { element: name, from: size, to, grows: false, wanted: to, reason: `${name} ${size} → ${to}: outside its shard's ${min}..${max}` };
  }

  const settledFrom = e.lastChange === undefined ? -Infinity : e.lastChange + o.warmupMs;
  if (now < settledFrom) {
    return keep(`settling after the change ${secs(Math.max(0, now - e.lastChange!))} ago; figures count after a ${secs(o.warmupMs)} warm-up`);
  }

  const members = readings(e.samples, now, settledFrom);
  const recentFrom = now - o.windowMs;
  let offered = 0;
  let measured = 0;
  let most = 0;
  for (const list of members.values()) {
    const recent = list.filter((s) => s.at > recentFrom);
    most = Math.max(most, recent.length);
    if (recent.length < o.minSamples) continue;
    measured++;
    offered += median(recent.map((s) => s.offeredPerSecond));
  }
  if (measured === 0) {
    const since = e.lastChange === undefined ? '' : ` since the change settled`;
    return keep(members.size === 0
      ? `no figures${since} yet`
      : `too few figures: at most ${most} reading${most === 1 ? '' : 's'} of a member in the last ${secs(o.windowMs)}, ${o.minSamples} needed`);
  }

  const rate = trueRate(members, Math.max(settledFrom, now - o.rateWindowMs));
  const partial = measured < size ? ` (from ${measured} of ${size} members)` : '';
  const figures = `offered ${num(offered)}/s${partial}, ${rateText(rate)}`;
  const known = { offered, ...(rate === undefined ? {} : { rate }) };
  if (offered > 0 && rate === undefined) {
    return keep(`${figures}: nothing processed in the last ${secs(o.rateWindowMs)}, so its true rate is unknown`, known);
  }

  const need = rawSize(offered, rate, o)!;
  const up = clamp(need, min, max);
  const runs = (n: number, load = offered) => `${n} run${n === 1 ? 's' : ''} at ${busy(load, n, rate)} busy`;
  const maxNote = need > max ? `; ${need} needed, but its shard's max is ${max}` : '';
  if (up > size) {
    const line = (n: number, capNote: string) =>
      `${n === size ? `${name} keeps ${size}` : `${name} ${size} → ${n}`}: ${figures}; ${runs(n)}${maxNote}${capNote}`;
    return { element: name, from: size, to: up, grows: true, wanted: up, ...known, line, reason: line(up, '') };
  }

  const down = clamp(downSize(offered, rate, o)!, min, max);
  if (down >= size) {
    let why = `${figures}; ${runs(size)}${maxNote}`;
    if (up < size) why += `; ${runs(up)}, inside the ${pct(o.deadBand)} dead band`;
    return keep(why, { ...known, wanted: size });
  }

  // A smaller size would do now: shrink only on every member's figures, and only when every
  // slice of the lull agrees.
  const lull = shrinkLullMs(cost, o);
  if (measured < size) {
    return keep(`${figures}; ${down} would do, but it does not shrink on figures from ${measured} of ${size} members`, { ...known, wanted: size });
  }
  const slices = Math.ceil(lull / o.windowMs - EPSILON);
  let run = 0;
  let peak = 0;
  let broke = '';
  for (let k = 0; k < slices; k++) {
    const end = now - k * o.windowMs;
    const start = end - o.windowMs;
    const ago = k === 0 ? `in the last ${secs(o.windowMs)}` : `${secs(k * o.windowMs)} ago`;
    if (start < settledFrom) {
      broke = `the change to ${size} settled ${secs(now - settledFrom)} ago`;
      break;
    }
    let present = 0;
    let sliceOffered = 0;
    let queued = 0;
    for (const list of members.values()) {
      const inSlice = list.filter((s) => s.at > start && s.at <= end);
      if (inSlice.length === 0) continue;
      present++;
      sliceOffered += median(inSlice.map((s) => s.offeredPerSecond));
      queued += median(inSlice.map((s) => s.queueDepth));
    }
    if (present === 0) {
      broke = `no figures from ${ago}`;
      break;
    }
    if (present < size) {
      broke = `figures from only ${present} of ${size} members ${ago}`;
      break;
    }
    const room = rate === undefined ? 0 : o.backlogSeconds * rate * size;
    if (queued > room) {
      broke = `its queues held ${num(queued)} logs ${ago} (more than ${secs(o.backlogSeconds * 1000)} of work)`;
      break;
    }
    const sliceDown = downSize(sliceOffered, rate, o);
    if (sliceDown === undefined || clamp(sliceDown, min, max) >= size) {
      broke = `offered ${num(sliceOffered)}/s ${ago}`;
      break;
    }
    peak = Math.max(peak, sliceOffered);
    run++;
  }
  if (run < slices) {
    const sofar = run * o.windowMs;
    return keep(
      `${figures}; ${down} would do, but it shrinks only after a lull of ${secs(lull)} (cost ${cost}), ` +
      (run === 0 ? `not begun: ${broke}` : `${secs(sofar)} so far (before that, ${broke})`),
      { ...known, wanted: size },
    );
  }
  const to = clamp(downSize(peak, rate, o)!, min, max);
  return {
    element: name, from: size, to, grows: false, ...known, wanted: to,
    reason: `${name} ${size} → ${to}: offered at most ${num(peak)}/s for ${secs(lull)} (cost ${cost}), now ${num(offered)}/s${partial}, ` +
      `${rateText(rate)}; ${runs(to, peak)} at that peak`,
  };
}

/**
 * Share the stack's cap among the elements that grow. Shrinks and moves into min..max are
 * made first (they are never held back); what room is left goes one instance at a time to
 * the growing element that would be busiest at the size it has been given so far (offered ÷
 * (size × true rate)), ties to the name first in order. Nothing is taken from an element to
 * make room.
 */
function shareCap(proposals: Proposal[], input: AutoscaleInput): AutoscaleDecision[] {
  const granted = new Map<Proposal, number>();
  const growing = proposals.filter((p) => p.grows);
  if (input.cap !== undefined && growing.length > 0) {
    const used = (input.others ?? 0) + proposals.reduce((sum, p) => sum + (p.grows ? p.from : p.to), 0);
    let room = input.cap - used;
    for (const p of growing) granted.set(p, p.from);
    while (room > 0) {
      let best: Proposal | undefined;
      let bestLoad = -1;
      for (const p of growing) {
        const n = granted.get(p)!;
        if (n >= p.to) continue;
        const load = n === 0 ? Infinity : p.offered! / (n * p.rate!);
        if (best === undefined || load > bestLoad || (load === bestLoad && p.element < best.element)) {
          best = p;
          bestLoad = load;
        }
      }
      if (!best) break;
      granted.set(best, granted.get(best)! + 1);
      room--;
    }
  }
  return proposals.map((p): AutoscaleDecision => {
    let to = p.to;
    let reason = p.reason;
    let capBound = false;
    const n = granted.get(p);
    if (n !== undefined && n < p.to) {
      capBound = true;
      to = n;
      reason = p.line!(n, `; ${p.to} wanted, but the stack's cap of ${input.cap} element instances binds`);
    }
    const d: AutoscaleDecision = { element: p.element, action: to === p.from ? 'keep' : 'scale', from: p.from, to, reason };
    if (p.offered !== undefined) d.offered = p.offered;
    if (p.rate !== undefined) d.ratePerInstance = p.rate;
    if (p.wanted !== undefined) d.wanted = p.wanted;
    if (capBound) d.capBound = true;
    return d;
  });
}

/**
 * Each member's usable readings from `settledFrom` to `now`, in time order, by member (sorted
 * by name). A reading with a figure that is not a finite number, or below 0, is dropped; of
 * two readings of one member at the same time the later given counts.
 */
function readings(samples: readonly MetricSample[], now: number, settledFrom: number): Map<string, MetricSample[]> {
  const byMember = new Map<string, Map<number, MetricSample>>();
  for (const s of samples) {
    if (!sane(s) || s.at > now || s.at < settledFrom) continue;
    let m = byMember.get(s.member);
    if (!m) byMember.set(s.member, (m = new Map()));
    m.set(s.at, s);
  }
  const out = new Map<string, MetricSample[]>();
  for (const member of [...byMember.keys()].sort()) {
    out.set(member, [...byMember.get(member)!.values()].sort((a, b) => a.at - b.at));
  }
  return out;
}

function sane(s: MetricSample): boolean {
  return typeof s.member === 'string' &&
    [s.at, s.processed, s.busySeconds, s.offeredPerSecond, s.queueDepth].every((v) => typeof v === 'number' && Number.isFinite(v)) &&
    s.processed >= 0 && s.busySeconds >= 0 && s.offeredPerSecond >= 0 && s.queueDepth >= 0;
}

/**
 * DS2's true rate per instance: logs processed ÷ busy seconds, summed over every member's
 * consecutive readings from `from` on. A pair across a restart (a counter that went back, a
 * new incarnation) or with more busy time than wall time (beyond 10 % and 50 ms of timer
 * slack) says nothing and is skipped. Undefined when nothing was processed; Infinity when
 * logs were processed in no measurable busy time.
 */
function trueRate(members: Map<string, MetricSample[]>, from: number): number | undefined {
  let processed = 0;
  let busySeconds = 0;
  for (const list of members.values()) {
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (a.at < from) continue;
      if (a.incarnation !== b.incarnation) continue;
      const dp = b.processed - a.processed;
      const db = b.busySeconds - a.busySeconds;
      const dt = (b.at - a.at) / 1000;
      if (dp < 0 || db < 0 || db > dt * 1.1 + 0.05) continue;
      processed += dp;
      busySeconds += db;
    }
  }
  if (processed <= 0) return undefined;
  return busySeconds <= 0 ? Infinity : processed / busySeconds;
}

/**
 * The size that carries `offered` (DS2 with the spare bound), before min and max: 0 when
 * nothing is offered, 1 when the true rate is too fast to time, undefined when it is unknown.
 */
function rawSize(offered: number, rate: number | undefined, o: AutoscaleOptions): number | undefined {
  if (offered <= 0) return 0;
  if (rate === undefined) return undefined;
  if (rate === Infinity) return 1;
  const ds2 = Math.ceil(offered / (rate * o.targetUtilisation) - EPSILON);
  const full = Math.ceil(offered / rate - EPSILON);
  return Math.max(1, Math.min(ds2, full + o.maxSpare));
}

/** The size a shrink may go to: what carries `offered` raised by the dead band, at most one more than `offered` needs. */
function downSize(offered: number, rate: number | undefined, o: AutoscaleOptions): number | undefined {
  const plain = rawSize(offered, rate, o);
  const banded = rawSize(offered * (1 + o.deadBand), rate, o);
  if (plain === undefined || banded === undefined) return undefined;
  return Math.min(banded, plain + 1);
}

/**
 * The median; of an even number of values, the upper of the middle two. A window half at a
 * new level reads as the new level when it is higher (a step up is grown for at once, not
 * first to the average of before and after), and a lull's slice half above it does not count
 * as a lull.
 */
function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v[v.length >> 1]!;
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

function costOf(cost: number): number {
  return typeof cost === 'number' && Number.isFinite(cost) && cost > 0 ? cost : 0;
}

function rateText(rate: number | undefined): string {
  if (rate === undefined) return 'true rate unknown (nothing processed)';
  if (rate === Infinity) return 'true rate too fast to time';
  return `true rate ${num(rate)}/s per instance`;
}

function busy(offered: number, n: number, rate: number | undefined): string {
  if (n <= 0 || rate === undefined) return offered > 0 ? '100 %' : '0 %';
  return pct(offered / (n * rate));
}

function pct(fraction: number): string {
  return `${Math.round(fraction * 100)} %`;
}

/** A figure for a log line: whole above 100, one decimal above 10, two below. */
function num(x: number): string {
  if (x === Infinity) return '∞';
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return String(Number(x.toFixed(digits)));
}

function secs(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : Number(s.toFixed(1))} s`;
}

function checkOptions(o: AutoscaleOptions): void {
  const bad = (what: string) => {
    throw new AutoscaleError(`autoscale: ${what}`);
  };
  if (!(o.targetUtilisation > 0 && o.targetUtilisation <= 1)) bad(`targetUtilisation must be in (0, 1], not ${o.targetUtilisation}`);
  if (!(o.maxSpare >= 0)) bad(`maxSpare must be 0 or more, not ${o.maxSpare}`);
  for (const key of ['warmupMs', 'lullMs', 'maxLullMs', 'deadBand', 'backlogSeconds'] as const) {
    if (!(Number.isFinite(o[key]) && o[key] >= 0)) bad(`${key} must be a finite number, 0 or more, not ${o[key]}`);
  }
  for (const key of ['windowMs', 'rateWindowMs'] as const) {
    if (!(Number.isFinite(o[key]) && o[key] > 0)) bad(`${key} must be a finite number above 0, not ${o[key]}`);
  }
  if (!(Number.isInteger(o.minSamples) && o.minSamples >= 2)) bad(`minSamples must be a whole number, 2 or more, not ${o.minSamples}`);
}

function checkInput(input: AutoscaleInput): void {
  const bad = (what: string) => {
    throw new AutoscaleError(`autoscale: ${what}`);
  };
  if (!Number.isFinite(input.now)) bad(`now must be a time in ms, not ${input.now}`);
  if (input.cap !== undefined && !(Number.isInteger(input.cap) && input.cap >= 0)) bad(`cap must be a whole number, 0 or more, not ${input.cap}`);
  if (input.others !== undefined && !(Number.isInteger(input.others) && input.others >= 0)) bad(`others must be a whole number, 0 or more, not ${input.others}`);
  const seen = new Set<string>();
  for (const e of input.elements) {
    if (typeof e.element !== 'string' || e.element === '') bad('every element needs a name');
    if (seen.has(e.element)) bad(`element '${e.element}' is given twice`);
    seen.add(e.element);
    const { min, max } = e.policy;
    if (!(Number.isInteger(min) && min >= 0 && Number.isInteger(max) && max >= min)) bad(`element '${e.element}': shard min ${min} and max ${max} must be whole numbers with 0 ≤ min ≤ max`);
    if (!(Number.isInteger(e.size) && e.size >= 0)) bad(`element '${e.element}': size must be a whole number, 0 or more, not ${e.size}`);
    if (e.lastChange !== undefined && !Number.isFinite(e.lastChange)) bad(`element '${e.element}': lastChange must be a time in ms, not ${e.lastChange}`);
  }
}
