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
 * Every request carries the element's control key (its stack's, made by HQ; or a run's); one
 * without it, or with another, is refused with an error reply and changes nothing. An element
 * started without a key refuses every control request.
 */
export type ControlRequest =
  | { op: 'stats' }
  | { op: 'endpoints' }
  | { op: 'peers'; port: string; targets: Target[] };

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
  switch (r?.op) {
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
      throw new WiringError(`unknown control request ${JSON.stringify(r)}`);
  }
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
