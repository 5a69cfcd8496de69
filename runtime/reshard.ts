import {
  DEFAULT_DRAINED_WAIT_MS, DEFAULT_HOLD_MS, MAX_HOLD_MS, holdPeers, isUnknownControlRequest, releasePeers, shedQueue, waitDrained,
  type ControlOptions,
} from './control.js';
import { QueryTimeoutError, WiringError } from './errors.js';

/** A producer of the element being re-sharded: one push out port and the target that changes. */
export interface ReshardProducer {
  /** Its control endpoint (tcp:// or ipc://). */
  control: string;
  /** Its push out port. */
  port: string;
  /** The target whose members change: `<element>.<port>`. */
  target: string;
  /** For messages (default: the control endpoint). */
  name?: string;
}

/** A member of the element being re-sharded: one push in port whose queue goes back. */
export interface ReshardConsumer {
  control: string;
  port: string;
  name?: string;
}

export interface ReshardOptions {
  /** The control key. */
  key: string;
  /** How long to wait for the producers to have nothing in flight (default 30000 ms). */
  drainTimeoutMs?: number;
  /** The holds' safety expiry (default 60000 ms): should cover the drain and the change. */
  holdMs?: number;
  /** Per plain request (hold, shed, release), default 2000 ms. */
  timeoutMs?: number;
}

export interface ReshardResult {
  /** Producers held. */
  held: number;
  /** Batches given back by consumers. */
  shed: number;
  /**
   * Every held producer reached 0 in flight before `change` (for a round-robin target: at the
   * members that shed; for a hash target: at every member).
   */
  drained: boolean;
  /** From the first hold to the start of `change`. */
  waitedMs: number;
  /**
   * Producers and consumers (name or control) that do not know these ops (an older runtime:
   * "unknown control request …") or did not answer; they were skipped.
   */
  unsupported: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Holds every producer, sheds the consumers' queues, waits until no producer has a batch in
 * flight (or drainTimeoutMs), runs `change` (the caller tells producers the new members:
 * setPeers / etcd), then releases every producer — release always happens, also when change
 * throws (rethrown after).
 *
 * "In flight" is at every member for a hash target (any key may move). For a round-robin
 * target it is at the consumers given (the members that leave: the others stay and keep what
 * they hold), when every one of them answered its shed; else at every member.
 *
 * A refusal (the key is not the elements') or a bad argument (a port or target an element does
 * not have) is thrown before `change` runs, the producers held so far released: the change
 * would be refused for the same reason. An element that does not know the ops or does not
 * answer is listed in `unsupported` and skipped.
 */
export async function reshard(
  producers: ReshardProducer[],
  consumers: ReshardConsumer[],
  change: () => Promise<void>,
  options: ReshardOptions,
): Promise<ReshardResult> {
  const drainTimeoutMs = ms('drainTimeoutMs', options.drainTimeoutMs, DEFAULT_DRAINED_WAIT_MS);
  const holdMs = ms('holdMs', options.holdMs, DEFAULT_HOLD_MS);
  const timeoutMs = ms('timeoutMs', options.timeoutMs, 2000);
  if (typeof options.key !== 'string') throw new WiringError('reshard: options.key (the control key) is required');
  const base: ControlOptions = { key: options.key, timeoutMs };
  const unsupported: string[] = [];
  const nameOf = (e: { name?: string; control: string }) => e.name ?? e.control;

  const started = performance.now();
  const holds = await Promise.allSettled(producers.map((p) => holdPeers(p.control, p.port, p.target, { ...base, holdMs })));
  const held: ReshardProducer[] = [];
  /** Held, or perhaps held (no answer in time): released at the end either way. */
  const release: ReshardProducer[] = [];
  let failure: unknown;
  holds.forEach((r, i) => {
    const p = producers[i] as ReshardProducer;
    if (r.status === 'fulfilled') {
      held.push(p);
      release.push(p);
    } else if (isUnknownControlRequest(r.reason)) unsupported.push(nameOf(p));
    else if (r.reason instanceof QueryTimeoutError) {
      unsupported.push(nameOf(p));
      release.push(p);
    } else failure ??= r.reason;
  });

  let waitedMs = 0;
  let shed = 0;
  let drained = true;
  try {
    if (failure !== undefined) throw failure;

    const sheds = await Promise.allSettled(consumers.map((c) => shedQueue(c.control, c.port, base)));
    /** The members that gave their queues back, as their producers know them. */
    let incarnations: string[] | undefined = consumers.length > 0 ? [] : undefined;
    sheds.forEach((r, i) => {
      const c = consumers[i] as ReshardConsumer;
      if (r.status === 'fulfilled') {
        shed += r.value.shed;
        if (typeof r.value.incarnation === 'string') incarnations?.push(r.value.incarnation);
        else incarnations = undefined;
      } else if (isUnknownControlRequest(r.reason) || r.reason instanceof QueryTimeoutError) {
        unsupported.push(nameOf(c));
        incarnations = undefined;
      } else failure ??= r.reason;
    });
    if (failure !== undefined) throw failure;

    // A round-robin target waits only for the members that shed (the others stay and keep
    // what they hold); a hash target for every member. Without every consumer's incarnation,
    // every member.
    const deadline = performance.now() + drainTimeoutMs;
    const empty = await Promise.all(held.map((p) => drain(p, deadline, base, incarnations)));
    drained = empty.every(Boolean);

    waitedMs = performance.now() - started;
    await change();
  } finally {
    await Promise.allSettled(release.map((p) => releasePeers(p.control, p.port, p.target, base)));
  }
  return { held: held.length, shed, drained, waitedMs, unsupported };
}

/** Whether the producer reached 0 in flight before the deadline. */
async function drain(p: ReshardProducer, deadline: number, base: ControlOptions, incarnations: string[] | undefined): Promise<boolean> {
  for (;;) {
    const left = Math.max(0, Math.ceil(deadline - performance.now()));
    try {
      const options = { ...base, waitMs: left, timeoutMs: left + (base.timeoutMs ?? 2000), ...(incarnations === undefined ? {} : { incarnations }) };
      const { inFlight } = await waitDrained(p.control, p.port, p.target, options);
      if (inFlight === 0) return true;
    } catch {
      return false;
    }
    const now = performance.now();
    if (now >= deadline) return false;
    // Answered before its time (the element had too many waits already): ask again shortly.
    await sleep(Math.min(50, deadline - now));
  }
}

function ms(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_HOLD_MS) {
    throw new WiringError(`reshard: options.${name} must be a number of ms from 0 to ${MAX_HOLD_MS}, got ${JSON.stringify(value)}`);
  }
  return value;
}
