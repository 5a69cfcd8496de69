import type { ElementStats } from './counters.js';
import { WiringError } from './errors.js';
import { QueryLink } from './query-out.js';
import type { Target } from './wiring.js';

/**
 * The control socket: a ROUTER at the wiring's `control` endpoint that answers queries in the
 * query connections' format. The runner (and HQ later) reads counters and changes peers here.
 *
 *   {op: 'stats'}                      → ElementStats
 *   {op: 'endpoints'}                  → {port: endpoint bound}
 *   {op: 'peers', port, targets}       → true (the port reconnects)
 */
export type ControlRequest =
  | { op: 'stats' }
  | { op: 'endpoints' }
  | { op: 'peers'; port: string; targets: Target[] };

export interface Controllable {
  stats(): ElementStats;
  endpoints(): Record<string, string>;
  setPeers(port: string, targets: Target[]): void;
}

export function answerControl(element: Controllable, request: unknown): unknown {
  const r = request as Partial<ControlRequest> | null;
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
      throw new WiringError(`unknown control request ${JSON.stringify(request)}`);
  }
}

/** Asks an element process's control socket once. */
export async function askControl(endpoint: string, request: ControlRequest, timeoutMs = 2000): Promise<unknown> {
  const link = new QueryLink('control', { id: 'control', endpoint });
  try {
    return await link.ask(request, timeoutMs);
  } finally {
    link.close();
  }
}

/** The counters of the element process whose control socket is at `endpoint`. */
export async function readStats(endpoint: string, timeoutMs = 2000): Promise<ElementStats> {
  return (await askControl(endpoint, { op: 'stats' }, timeoutMs)) as ElementStats;
}

/** Tells the element process at `endpoint` the new peers of one of its out ports. */
export async function sendPeers(endpoint: string, port: string, targets: Target[], timeoutMs = 2000): Promise<void> {
  await askControl(endpoint, { op: 'peers', port, targets }, timeoutMs);
}
