import { Router } from 'zeromq';
import { AckToken } from './ack-token.js';
import { PortCounters, type QueueState } from './counters.js';
import { BATCH, CONTINUE, FEATURE_NACK, PROBE, kindOf } from './frames.js';
import { SendQueue } from './send-queue.js';
import type { Log } from './log.js';

/** What the runtime does with one received batch; resolves when the handler has finished. */
export type BatchHandler = (port: string, logs: Log[], token: AckToken) => Promise<void>;

/** A producer counts towards `queueLimit` while it holds batches here or was heard from this lately. */
const PRODUCER_ACTIVE_MS = 10_000;
/** A producer's record is forgotten (a connection gone, its routing id never seen again) after this long unheard. */
const PRODUCER_FORGET_MS = 300_000;

/** One producer connection (a routing id): its window, as its probe announced it, and what it has unacknowledged here. */
interface Producer {
  /** Batches it sends before it waits for an acknowledgement (its `queue`). */
  window: number;
  /** Logs per batch at most (its `batch`). */
  batch: number;
  /** Batches received from it and not yet acknowledged. */
  unacked: number;
  lastAt: number;
  /** It takes NACKs (its probe said so): only then is anything given back to it. */
  nacks: boolean;
  /** Since a shed: every batch from it is given back, until its `C` answers our first NACK. */
  shedding: boolean;
  /** The seq of the first batch given back since the shed (a `C` older than it is stale). */
  shedFrom: number | undefined;
}

interface Received {
  peer: Buffer;
  seq: Buffer;
  logs: Log[];
  from: Producer;
}

/**
 * A push in port: binds a ROUTER that producers' DEALERs connect to. Greets each new connection
 * with this process's incarnation (so a producer knows to send its unacknowledged batches again),
 * reads batches as they come into its queue, hands them to the handler one at a time in arrival
 * order, and acknowledges each when its token is released.
 *
 * What the queue holds is bounded by the producers' windows (at most `queue` unacknowledged
 * batches per producer connection, announced in the probe): a producer whose window is full
 * here sends nothing more until one is acknowledged. That is the port's backpressure.
 */
export class PushInPort {
  readonly counters = new PortCounters('push', 'in');
  private readonly socket: Router;
  private readonly out: SendQueue;
  private closed = false;
  /** Received batches waiting for the handler, oldest first. */
  private readonly queue: Received[] = [];
  private handling = false;
  /** A handler threw: nothing more is handled. */
  private broken = false;
  private failed: ((err: unknown) => void) | undefined;
  private readonly producers = new Map<string, Producer>();
  /** The endpoint bound (a wildcard port resolved). */
  endpoint = '';

  constructor(
    readonly name: string,
    private readonly bindTo: string,
    private readonly incarnation: string,
    private readonly window: number,
    private readonly batch: number,
    private readonly handle: BatchHandler,
  ) {
    this.socket = new Router({
      receiveHighWaterMark: window,
      sendHighWaterMark: 0,
      linger: 0,
      handover: true,
      heartbeatInterval: 1000,
      heartbeatTimeout: 5000,
    });
    this.out = new SendQueue(this.socket);
    this.counters.queueState = () => this.queueState();
  }

  async bind(): Promise<void> {
    await this.socket.bind(this.bindTo);
    this.endpoint = this.socket.lastEndpoint ?? this.bindTo;
  }

  /** Runs until closed; rejects when a handler throws. */
  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.failed = reject;
      this.receive().then(resolve, reject);
    });
  }

  private async receive(): Promise<void> {
    try {
      for await (const [peer, kind, seq, body, features] of this.socket) {
        const k = kindOf(kind);
        if (k === PROBE) {
          // `P window batch features` (older producers send a bare `P`: the port's own tuning
          // stands in; or no features: they take no NACKs).
          const p = this.producer(peer as Buffer, seq, body);
          p.nacks = features?.toString() === FEATURE_NACK;
          this.out.send([peer as Buffer, 'H', this.incarnation]);
        } else if (k === BATCH && seq !== undefined && body !== undefined) {
          const from = this.producer(peer as Buffer, undefined, undefined);
          this.counters.batchesIn++;
          if (from.shedding) {
            // Sent before the producer took back what we gave it: it comes back too, so that
            // nothing after a batch given back is handled before it.
            from.shedFrom ??= Number(seq.toString());
            this.counters.batchesReturned++;
            this.out.send([peer as Buffer, 'N', seq]);
            continue;
          }
          const logs = JSON.parse(body.toString('utf8')) as Log[];
          from.unacked++;
          this.counters.queued += logs.length;
          this.queue.push({ peer: peer as Buffer, seq, logs, from });
          if (!this.handling) void this.handleQueued();
        } else if (k === CONTINUE && seq !== undefined) {
          const from = this.producers.get((peer as Buffer).toString('latin1'));
          if (from?.shedding && from.shedFrom !== undefined && Number(seq.toString()) >= from.shedFrom) {
            from.shedding = false;
            from.shedFrom = undefined;
          }
        }
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  /** Hands queued batches to the handler one at a time, in arrival order. */
  private async handleQueued(): Promise<void> {
    this.handling = true;
    try {
      while (!this.closed && !this.broken && this.queue.length > 0) {
        const { peer, seq, logs, from } = this.queue.shift() as Received;
        const token = new AckToken(() => {
          from.unacked--;
          this.out.send([peer, 'A', seq]);
        });
        try {
          await this.handle(this.name, logs, token);
        } finally {
          this.counters.queued -= logs.length;
        }
        this.counters.logsIn += logs.length;
      }
    } catch (err) {
      this.broken = true;
      if (!this.closed) this.failed?.(err);
    } finally {
      this.handling = false;
    }
  }

  /**
   * Re-sharding: gives every batch received and not yet handed to the handler back to its
   * producer (`N seq`); the batch being handled finishes as usual. Until a producer answers
   * with `C`, whatever else arrives from it goes back too (it was on its way before the producer
   * knew). Batches of producers that take no NACKs (older runtimes) stay. Returns the number
   * of batches given back from the queue.
   */
  shed(): number {
    if (this.closed) return 0;
    for (const p of this.producers.values()) {
      if (p.nacks && !p.shedding) {
        p.shedding = true;
        p.shedFrom = undefined;
      }
    }
    const kept: Received[] = [];
    let n = 0;
    for (const r of this.queue.splice(0)) {
      if (!r.from.nacks) {
        kept.push(r);
        continue;
      }
      r.from.unacked--;
      r.from.shedFrom ??= Number(r.seq.toString());
      this.counters.queued -= r.logs.length;
      this.counters.batchesReturned++;
      this.out.send([r.peer, 'N', r.seq]);
      n++;
    }
    this.queue.push(...kept);
    return n;
  }

  /** The record of the producer at `peer`, made on its first message (its probe). */
  private producer(peer: Buffer, window: Buffer | undefined, batch: Buffer | undefined): Producer {
    const id = peer.toString('latin1');
    const now = Date.now();
    let p = this.producers.get(id);
    if (p === undefined) {
      if (this.producers.size > 0 && window !== undefined) this.forget(now);
      p = { window: this.window, batch: this.batch, unacked: 0, lastAt: now, nacks: false, shedding: false, shedFrom: undefined };
      this.producers.set(id, p);
    }
    if (window !== undefined) {
      p.window = positive(window) ?? this.window;
      p.batch = positive(batch) ?? this.batch;
    }
    p.lastAt = now;
    return p;
  }

  /** Drops the records of producers long unheard that hold nothing here (connections gone). */
  private forget(now: number): void {
    for (const [id, p] of this.producers) if (p.unacked === 0 && now - p.lastAt > PRODUCER_FORGET_MS) this.producers.delete(id);
  }

  private queueState(): QueueState {
    const now = Date.now();
    let limit = 0;
    let backpressure = false;
    for (const p of this.producers.values()) {
      if (p.unacked === 0 && now - p.lastAt > PRODUCER_ACTIVE_MS) continue;
      limit += p.window * p.batch;
      if (p.unacked >= p.window) backpressure = true;
    }
    return { queueLimit: limit > 0 ? limit : this.window * this.batch, backpressure };
  }

  close(): void {
    this.closed = true;
    this.out.close();
    this.socket.close();
  }
}

function positive(frame: Buffer | undefined): number | undefined {
  if (frame === undefined) return undefined;
  const n = Number(frame.toString());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
