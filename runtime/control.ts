import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ElementStats } from './counters.js';
import { ControlRefusedError, QueryFailedError, WiringError } from './errors.js';
import { QueryLink } from './query-out.js';
import type { Target } from './wiring.js';

/**
 * The control socket: a ROUTER at the wiring's `control` endpoint that answers queries in the
 * query connections' format. HQ (rewiring producers) and a runner read counters and change
 * peers here.
 *
 *   {op: 'stats', key}                 → ElementStats
 *   {op: 'endpoints', key}             → {port: endpoint bound}
 *   {op: 'peers', port, targets, key}  → true (the port reconnects)
 *
 * Re-sharding (runtime/reshard.ts): `port` is a push out port and `target` one of its targets,
 * `<element>.<port>`, except for `shed`, whose `port` is a push in port.
 *
 *   {op: 'hold', port, target, holdMs?, key}     → {inFlight}: no batch goes to the target's
 *                                                  members until release or holdMs (60000)
 *   {op: 'shed', port, key}                      → {shed, incarnation}: batches not started go back (NACK)
 *   {op: 'drained', port, target, waitMs?, incarnations?, key}
 *                                                → {inFlight} once 0 in flight, or after waitMs (30000);
 *                                                  a round-robin target with `incarnations` (of the
 *                                                  members that shed) counts only those members
 *   {op: 'release', port, target, key}           → {inFlight}: the hold ends (idempotent)
 *
 * Every request carries the element's control key (its stack's, made by HQ; or a run's); one
 * without it, or with another, is refused with an error reply and changes nothing. An element
 * started without a key refuses every control request.
 */
export type ControlRequest =
  | { op: 'stats' }
  | { op: 'endpoints' }
  | { op: 'peers'; port: string; targets: Target[] }
  | { op: 'hold'; port: string; target: string; holdMs?: number }
  | { op: 'release'; port: string; target: string }
  | { op: 'drained'; port: string; target: string; waitMs?: number; incarnations?: string[] }
  | { op: 'shed'; port: string };

/** What `hold`, `release` and `drained` answer: logs handed to members and not yet acknowledged. */
export interface InFlight {
  inFlight: number;
}

/** What `shed` answers: batches given back to their producers, and the consumer's incarnation. */
export interface Shed {
  shed: number;
  incarnation?: string;
}

/** The default of `hold`'s holdMs (the safety expiry) and `drained`'s waitMs. */
export const DEFAULT_HOLD_MS = 60_000;
export const DEFAULT_DRAINED_WAIT_MS = 30_000;
/** The longest hold or wait a request may ask for. */
export const MAX_HOLD_MS = 600_000;

/** The start of the error message an element gives a request it does not know (an older runtime, a new op). */
export const UNKNOWN_CONTROL_REQUEST = 'unknown control request';

/**
 * The env var an element process takes its control key from. Only ever the environment: never
 * an argument (anyone on the machine reads those), never a label, never a log line.
 */
export const CONTROL_KEY_ENV = 'QUARRY_CONTROL_KEY';

/** The error message of a refusal (no key, another key); the asker turns it into ControlRefusedError. */
export const CONTROL_REFUSED = 'refused: the request does not carry this element\'s control key';

/** A new control key: 32 random bytes, hex. */
export function newControlKey(): string {
  return randomBytes(32).toString('hex');
}

/** How often at most the runtime notes refused requests (with how many since the last note). */
const REFUSAL_NOTE_MS = 5_000;

export interface ControlOptions {
  /** The element's control key: its stack's (HQ), or the run's (`quarry run`). */
  key: string;
  /** How long to wait for the answer (default 2000 ms). */
  timeoutMs?: number;
}

export interface Controllable {
  stats(): ElementStats;
  endpoints(): Record<string, string>;
  setPeers(port: string, targets: Target[]): void;
  hold(port: string, target: string, holdMs?: number): InFlight;
  release(port: string, target: string): InFlight;
  drained(port: string, target: string, waitMs?: number, incarnations?: string[]): Promise<InFlight>;
  shed(port: string): Shed;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * The door of the control socket: lets through requests that carry the key and refuses the
 * rest. Keeps only the key's digest; compares digests (equal length) with timingSafeEqual, so
 * the time taken says nothing about how much of an offered key was right. Refusals are noted
 * through `log` at most once per 5 s, with their number, never with a key offered or held.
 */
export class ControlGate {
  private readonly digest: Buffer | undefined;
  private refused = 0;
  private notedAt = -Infinity;

  /** Without a key (undefined or empty) every request is refused. */
  constructor(key: string | undefined, private readonly log: (line: string) => void = () => {}, private readonly now: () => number = Date.now) {
    this.digest = key ? sha256(key) : undefined;
  }

  /** The request without its key, if the key is right; else a throw (the asker's error reply). */
  admit(request: unknown): unknown {
    if (!this.admits(request)) throw new ControlRefusedError(CONTROL_REFUSED);
    const { key: _key, ...rest } = request as Record<string, unknown>;
    return rest;
  }

  /** Whether the request carries the key; a refusal is counted (and noted, at most once per 5 s). */
  admits(request: unknown): boolean {
    const offered = (request as { key?: unknown } | null)?.key;
    if (this.digest !== undefined && typeof offered === 'string' && timingSafeEqual(sha256(offered), this.digest)) return true;
    const at = this.now();
    // Refusals in the same instant as a note belong to the burst it named; later ones are counted.
    if (at !== this.notedAt) this.refused++;
    if (at - this.notedAt >= REFUSAL_NOTE_MS) {
      const n = this.refused;
      this.log(`control socket: refused ${n} control request${n === 1 ? '' : 's'} without this element's control key` +
        `${Number.isFinite(this.notedAt) ? ` in the last ${Math.round((at - this.notedAt) / 1000)} s` : ''}` +
        ` (noted at most once per ${REFUSAL_NOTE_MS / 1000} s)`);
      this.refused = 0;
      this.notedAt = at;
    }
    return false;
  }
}

/** The answer to one control request, once `gate` has let it through (a refusal throws). */
export function answerControl(element: Controllable, request: unknown, gate: ControlGate): unknown {
  const r = gate.admit(request) as Partial<ControlRequest> | null;
  const args = (r ?? {}) as Record<string, unknown>;
  switch (r?.op) {
    case 'hold': {
      const { port, target } = portAndTarget('hold', args);
      return element.hold(port, target, span('hold', 'holdMs', args.holdMs, DEFAULT_HOLD_MS, port, target));
    }
    case 'release': {
      const { port, target } = portAndTarget('release', args);
      return element.release(port, target);
    }
    case 'drained': {
      const { port, target } = portAndTarget('drained', args);
      const { incarnations } = args;
      if (incarnations !== undefined && !(Array.isArray(incarnations) && incarnations.every((i) => typeof i === 'string'))) {
        throw new WiringError(`drained on port '${port}', target '${target}': incarnations must be a list of strings, got ${JSON.stringify(incarnations)}`);
      }
      return element.drained(port, target, span('drained', 'waitMs', args.waitMs, DEFAULT_DRAINED_WAIT_MS, port, target), incarnations as string[] | undefined);
    }
    case 'shed': {
      if (typeof args.port !== 'string' || args.port === '') throw new WiringError(`shed: port (a push in port's name) is required, got ${JSON.stringify(args.port)}`);
      return element.shed(args.port);
    }
    case 'stats':
      return element.stats();
    case 'endpoints':
      return element.endpoints();
    case 'peers': {
      const { port, targets } = r as { port?: unknown; targets?: unknown };
      if (typeof port !== 'string' || !Array.isArray(targets)) throw new WiringError('peers: port and targets are required');
      element.setPeers(port, targets as Target[]);
      return true;
    }
    default:
      throw new WiringError(`${UNKNOWN_CONTROL_REQUEST} ${JSON.stringify(r)}`);
  }
}

function portAndTarget(op: string, args: Record<string, unknown>): { port: string; target: string } {
  const { port, target } = args;
  if (typeof port !== 'string' || port === '') throw new WiringError(`${op}: port (a push out port's name) is required, got ${JSON.stringify(port)}`);
  if (typeof target !== 'string' || target === '') {
    throw new WiringError(`${op} on port '${port}': target ('<element>.<port>', one of the port's targets) is required, got ${JSON.stringify(target)}`);
  }
  return { port, target };
}

function span(op: string, name: string, value: unknown, fallback: number, port: string, target: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_HOLD_MS) {
    throw new WiringError(`${op} on port '${port}', target '${target}': ${name} must be a number of ms from 0 to ${MAX_HOLD_MS}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Asks an element process's control socket once, with its control key. A refusal (the key is
 * not the element's, or it has none) is a ControlRefusedError.
 */
export async function askControl(endpoint: string, request: ControlRequest, options: ControlOptions): Promise<unknown> {
  const link = new QueryLink('control', { id: 'control', endpoint });
  try {
    return await link.ask({ ...request, key: options.key }, options.timeoutMs ?? 2000);
  } catch (err) {
    if (err instanceof QueryFailedError && err.remoteMessage === CONTROL_REFUSED) throw new ControlRefusedError(`control socket ${endpoint}: ${CONTROL_REFUSED}`);
    throw err;
  } finally {
    link.close();
  }
}

/** The counters of the element process whose control socket is at `endpoint`. */
export async function readStats(endpoint: string, options: ControlOptions): Promise<ElementStats> {
  return (await askControl(endpoint, { op: 'stats' }, options)) as ElementStats;
}

/** Tells the element process at `endpoint` the new peers of one of its out ports. */
export async function sendPeers(endpoint: string, port: string, targets: Target[], options: ControlOptions): Promise<void> {
  await askControl(endpoint, { op: 'peers', port, targets }, options);
}

/**
 * Re-sharding: the push out port `port` of the element at `endpoint` hands no batch to the
 * members of `target` (`<element>.<port>`) until releasePeers() or `holdMs` (default 60000, the
 * safety expiry) pass. Its emit waits meanwhile; nothing is lost. Answers the logs in flight.
 */
export async function holdPeers(endpoint: string, port: string, target: string, options: ControlOptions & { holdMs?: number }): Promise<InFlight> {
  const { holdMs, ...rest } = options;
  return (await askControl(endpoint, { op: 'hold', port, target, ...(holdMs === undefined ? {} : { holdMs }) }, rest)) as InFlight;
}

/** Ends a hold (idempotent): the waiting batches go to the members the port has now. */
export async function releasePeers(endpoint: string, port: string, target: string, options: ControlOptions): Promise<InFlight> {
  return (await askControl(endpoint, { op: 'release', port, target }, options)) as InFlight;
}

/**
 * Resolves once nothing of `target` is in flight at the element at `endpoint` (every batch
 * acknowledged or given back), or after `waitMs` (default 30000), with the logs in flight
 * then. With `incarnations` (from the `shed` answers of the members that gave their queues
 * back), a round-robin target counts only those members; a hash target always counts every
 * member. The request's own timeout is `timeoutMs`, by default waitMs + 2000.
 */
export async function waitDrained(
  endpoint: string, port: string, target: string, options: ControlOptions & { waitMs?: number; incarnations?: string[] },
): Promise<InFlight> {
  const { waitMs, incarnations, ...rest } = options;
  const wait = waitMs ?? DEFAULT_DRAINED_WAIT_MS;
  const request: ControlRequest = { op: 'drained', port, target, waitMs: wait, ...(incarnations === undefined ? {} : { incarnations }) };
  return (await askControl(endpoint, request, { ...rest, timeoutMs: rest.timeoutMs ?? wait + 2000 })) as InFlight;
}

/** The push in port `port` of the element at `endpoint` gives back every batch it has not started. */
export async function shedQueue(endpoint: string, port: string, options: ControlOptions): Promise<Shed> {
  return (await askControl(endpoint, { op: 'shed', port }, options)) as Shed;
}

/** Whether an error is an element's answer that it does not know the request (an older runtime). */
export function isUnknownControlRequest(err: unknown): boolean {
  return err instanceof QueryFailedError && err.remoteMessage.startsWith(UNKNOWN_CONTROL_REQUEST);
}
