import type { PortKind } from './wiring.js';

/** Round-trip (asker) or handling (answerer) times of queries. */
export interface LatencyStats {
  count: number;
  meanMs: number;
  maxMs: number;
}

/** One port's counters since the element started. */
export interface PortStats {
  kind: PortKind;
  dir: 'in' | 'out';
  /** in: logs received and handled; out: logs taken by emit. */
  logsIn: number;
  logsOut: number;
  /** out push: logs the consumers have acknowledged. */
  logsAcked: number;
  batchesIn: number;
  batchesOut: number;
  /** out push: batches sent again after a consumer restarted or a member was removed. */
  batchesResent: number;
  /** out push: time producers spent waiting on a full queue. */
  blockedMs: number;
  /** out push: logs held now (unacknowledged or waiting for room), and the most ever held. */
  heldLogs: number;
  heldLogsMax: number;
  /** query: queries asked (out) or answered (in), failed, timed out (out). */
  queries: number;
  queryErrors: number;
  queryTimeouts: number;
  latency: LatencyStats;
  /** query: the median and 99th percentile of recent latencies, in ms (issue 17). */
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  /** in: logs received and not yet handled (the queue of this port's incoming connections). */
  queued?: number;
  /** in: the most logs this port holds before it stops taking more (what `queued` is measured against). */
  queueLimit?: number;
  /** in: whether this port applies backpressure now (it takes no more until its queue drains). */
  backpressure?: boolean;
  /** out: the members connected to (endpoints). */
  peers: string[];
}

/** A snapshot of an element process's counters: what `stats()` and the control socket give. */
export interface ElementStats {
  element: string;
  member: number;
  /** A random id of this process's life: it changes when the element restarts. */
  incarnation: string;
  uptimeMs: number;
  /** Time spent in the element's handlers since it started, in ms (busy fraction = its growth ÷ wall time). */
  busyMs?: number;
  ports: Record<string, PortStats>;
}

/** The live counters of one port; `snapshot()` copies them. */
export class PortCounters {
  logsIn = 0;
  logsOut = 0;
  logsAcked = 0;
  batchesIn = 0;
  batchesOut = 0;
  batchesResent = 0;
  blockedMs = 0;
  heldLogs = 0;
  heldLogsMax = 0;
  queries = 0;
  queryErrors = 0;
  queryTimeouts = 0;
  private latencyCount = 0;
  private latencyTotal = 0;
  private latencyMax = 0;

  constructor(
    readonly kind: PortKind,
    readonly dir: 'in' | 'out',
  ) {}

  hold(logs: number): void {
    this.heldLogs += logs;
    if (this.heldLogs > this.heldLogsMax) this.heldLogsMax = this.heldLogs;
  }

  latency(ms: number): void {
    this.latencyCount++;
    this.latencyTotal += ms;
    if (ms > this.latencyMax) this.latencyMax = ms;
  }

  snapshot(peers: string[]): PortStats {
    return {
      kind: this.kind,
      dir: this.dir,
      logsIn: this.logsIn,
      logsOut: this.logsOut,
      logsAcked: this.logsAcked,
      batchesIn: this.batchesIn,
      batchesOut: this.batchesOut,
      batchesResent: this.batchesResent,
      blockedMs: Math.round(this.blockedMs * 1000) / 1000,
      heldLogs: this.heldLogs,
      heldLogsMax: this.heldLogsMax,
      queries: this.queries,
      queryErrors: this.queryErrors,
      queryTimeouts: this.queryTimeouts,
      latency: {
        count: this.latencyCount,
        meanMs: this.latencyCount === 0 ? 0 : this.latencyTotal / this.latencyCount,
        maxMs: this.latencyMax,
      },
      peers,
    };
  }
}
