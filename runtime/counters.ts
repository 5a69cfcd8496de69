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
  /**
   * out push: batches members gave back unhandled (NACKs: they shed their queues for a
   * re-shard); in push: batches this port gave back. Not counted in batchesResent.
   */
  batchesReturned: number;
  /** out push: time producers spent waiting on a full queue, a wait still going on included. */
  blockedMs: number;
  /** out push: logs held now (unacknowledged or waiting for room), and the most ever held. */
  heldLogs: number;
  heldLogsMax: number;
  /** query: queries asked (out) or answered (in), failed, timed out (out). */
  queries: number;
  queryErrors: number;
  queryTimeouts: number;
  latency: LatencyStats;
  /**
   * query: the median and 99th percentile of the last 1024 latencies, in ms (nearest rank; 0
   * before the first). Measured as `latency` is: the round trip for an asker, the handling time
   * for an answerer. Push ports: 0.
   */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /**
   * in push: logs received (read off the socket) whose handler has not finished yet, the batch
   * being handled among them. in query: queries being answered now. Out ports: 0.
   */
  queued: number;
  /**
   * in push: the most logs the port's producers may have unacknowledged here, the sum over the
   * producers heard from lately of each one's window (its `queue`, in batches) × its `batch`
   * (the port's own `queue × batch` while none is). in query: `concurrency`. Out ports: 0.
   */
  queueLimit: number;
  /**
   * in push: some producer's acknowledgement window is full here (it has `queue` batches this
   * port has not acknowledged: it sends this member nothing more until one is). in query: all
   * `concurrency` handlers are busy (the port reads no more queries; they wait in ZeroMQ).
   * Out ports: false.
   */
  backpressure: boolean;
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
  /**
   * Wall time during which at least one of the element's handlers (onPush, onQuery) was running,
   * in ms since it started: busy fraction = its growth ÷ the growth of wall time (0 to 1). A
   * handler counts until its promise settles, time it awaits inside (emit on a full port, ask)
   * included; handlers that overlap count once.
   */
  busyMs: number;
  ports: Record<string, PortStats>;
}

/** How many recent latencies a port keeps for its percentiles. */
export const LATENCY_WINDOW = 1024;

/** What an in port reports of its queue when asked (at snapshot time, not on the hot path). */
export interface QueueState {
  queueLimit: number;
  backpressure: boolean;
}

/** The live counters of one port; `snapshot()` copies them. */
export class PortCounters {
  logsIn = 0;
  logsOut = 0;
  logsAcked = 0;
  batchesIn = 0;
  batchesOut = 0;
  batchesResent = 0;
  batchesReturned = 0;
  blockedMs = 0;
  /** out push: the span of a block still going on (set by the port, read at snapshot). */
  blockedNow: (() => number) | undefined;
  heldLogs = 0;
  heldLogsMax = 0;
  queries = 0;
  queryErrors = 0;
  queryTimeouts = 0;
  private latencyCount = 0;
  private latencyTotal = 0;
  private latencyMax = 0;
  /** The last LATENCY_WINDOW latencies, a ring. */
  private recent: Float64Array | undefined;
  /** in: logs (push) or queries (query) taken and not yet handled. */
  queued = 0;
  /** in: set by the port, read at snapshot. */
  queueState: (() => QueueState) | undefined;

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
    const ring = (this.recent ??= new Float64Array(LATENCY_WINDOW));
    ring[(this.latencyCount - 1) % LATENCY_WINDOW] = ms;
  }

  /** The p-quantiles (0 < p ≤ 1) of the recent latencies, nearest rank; 0 without any. */
  private percentiles(ps: number[]): number[] {
    const n = Math.min(this.latencyCount, LATENCY_WINDOW);
    if (n === 0 || this.recent === undefined) return ps.map(() => 0);
    const sorted = this.recent.slice(0, n).sort();
    return ps.map((p) => round3(sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))] as number));
  }

  snapshot(peers: string[]): PortStats {
    const [p50, p99] = this.percentiles([0.5, 0.99]) as [number, number];
    const queue = this.queueState?.() ?? { queueLimit: 0, backpressure: false };
    return {
      kind: this.kind,
      dir: this.dir,
      logsIn: this.logsIn,
      logsOut: this.logsOut,
      logsAcked: this.logsAcked,
      batchesIn: this.batchesIn,
      batchesOut: this.batchesOut,
      batchesResent: this.batchesResent,
      batchesReturned: this.batchesReturned,
      blockedMs: round3(this.blockedMs + (this.blockedNow?.() ?? 0)),
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
      latencyP50Ms: p50,
      latencyP99Ms: p99,
      queued: this.queued,
      queueLimit: queue.queueLimit,
      backpressure: queue.backpressure,
      peers,
    };
  }
}

/**
 * The time the element's handlers run, as the union of their intervals: O(1) per handler call
 * (two clock reads), and a handler still running counts up to now.
 */
export class BusyClock {
  private running = 0;
  private since = 0;
  private total = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  enter(): void {
    if (this.running++ === 0) this.since = this.now();
  }

  leave(): void {
    if (--this.running === 0) this.total += this.now() - this.since;
  }

  /** Ms so far, the running handlers' time up to now included. */
  ms(): number {
    return round3(this.total + (this.running > 0 ? this.now() - this.since : 0));
  }
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
