import { Dealer } from 'zeromq';
import { ACK, FEATURE_NACK, HELLO, NACK, kindOf } from './frames.js';
import type { OutBatch } from './out-batch.js';
import type { Member } from './wiring.js';

export interface PushLinkEvents {
  /** A batch was acknowledged: the room it held is free. */
  acked(batch: OutBatch): void;
  /** Batches were sent again (a consumer restarted or reconnected). */
  resent(count: number): void;
  /**
   * Batches came back unhandled (the member shed its queue: NACKs), oldest first: they are no
   * longer this member's and must be sent again, ahead of anything later.
   */
  returned(batches: OutBatch[]): void;
}

/**
 * The producer's end of a push connection to one consumer member: a DEALER to the member's
 * ROUTER, and the batches that member has not acknowledged. On every new connection (the first,
 * a restarted member, a broken connection come back: ZeroMQ's `connect` event) it sends a probe
 * and stops sending batches until the member's hello answers it; then it sends every batch not
 * yet acknowledged, in order. (ZeroMQ's own probeRouter is sent on the first connection only.)
 * A batch the member gives back (`N seq`, it shed its queue) leaves the link for the group.
 */
export class PushLink {
  private readonly socket: Dealer;
  private readonly unacked = new Map<number, OutBatch>();
  private sendQueue: number[] = [];
  private sending = false;
  private greeted = false;
  private hellos = 0;
  /** Probes to send (one per new connection). */
  private probes = 0;
  /** `C seq` frames to send (answers to NACKs), before any further batch. */
  private continues: string[] = [];
  private nextSeq = 1;
  private closed = false;
  /** The consumer's incarnation at its last hello. */
  incarnation: string | undefined;

  constructor(
    readonly member: Member,
    readonly capacity: number,
    private readonly events: PushLinkEvents,
    /** Logs per batch at most (told to the consumer in the probe, with the window). */
    private readonly batchSize = 0,
  ) {
    this.socket = new Dealer({
      sendHighWaterMark: capacity,
      receiveHighWaterMark: 0,
      linger: 0,
      reconnectInterval: 100,
      reconnectMaxInterval: 1000,
      heartbeatInterval: 1000,
      heartbeatTimeout: 5000,
    });
    this.socket.events.on('connect', () => {
      this.greeted = false;
      this.probes++;
      this.kick();
    });
    this.socket.connect(member.endpoint);
    void this.receiveLoop();
  }

  /** Batches this member can still take before its queue is full. */
  get room(): number {
    return this.capacity - this.unacked.size;
  }

  get heldLogs(): number {
    let n = 0;
    for (const batch of this.unacked.values()) n += batch.logs.length;
    return n;
  }

  enqueue(batch: OutBatch): void {
    const seq = this.nextSeq++;
    this.unacked.set(seq, batch);
    if (this.greeted) {
      this.sendQueue.push(seq);
      this.kick();
    }
  }

  /** Stops talking to the member; gives back what it has not acknowledged, oldest first. */
  close(): OutBatch[] {
    this.closed = true;
    this.socket.close();
    const left = [...this.unacked.values()];
    this.unacked.clear();
    return left;
  }

  private kick(): void {
    if (!this.sending) void this.sendLoop();
  }

  private async sendLoop(): Promise<void> {
    this.sending = true;
    try {
      while (!this.closed && (this.probes > 0 || this.continues.length > 0 || (this.greeted && this.sendQueue.length > 0))) {
        if (this.probes > 0) {
          this.probes = 0;
          // `P window batch features`: the consumer reports its queue against the first two,
          // and gives batches back (NACK) only to a producer that says it takes them.
          await this.socket.send(['P', String(this.capacity), String(this.batchSize), FEATURE_NACK]);
          continue;
        }
        if (this.continues.length > 0) {
          await this.socket.send(['C', this.continues.shift() as string]);
          continue;
        }
        const seq = this.sendQueue.shift() as number;
        const batch = this.unacked.get(seq);
        if (batch === undefined) continue; // acknowledged while it waited (a resend)
        await this.socket.send(['B', String(seq), batch.encode()]);
      }
    } catch (err) {
      if (!this.closed) throw err;
    } finally {
      this.sending = false;
    }
  }

  /**
   * `N seq`: the member gives the batch back unhandled, and from now on gives back everything
   * this link sent it until it reads our `C seq`. So the batch and every later one not sent yet
   * leave this link (the later sent ones come back with their own NACKs), the `C` goes out
   * before any further batch, and the group places them again, in their order.
   */
  private nacked(seqText: string): void {
    const seq = Number(seqText);
    if (!Number.isInteger(seq)) return;
    const back: OutBatch[] = [];
    const batch = this.unacked.get(seq);
    if (batch !== undefined) {
      this.unacked.delete(seq);
      back.push(batch);
    }
    // Not sent yet: sent after the `C` they would be handled, ahead of the batch given back.
    const unsent = this.sendQueue.filter((s) => s > seq).sort((a, b) => a - b);
    if (unsent.length > 0) {
      const later = new Set(unsent);
      this.sendQueue = this.sendQueue.filter((s) => !later.has(s));
      for (const s of unsent) {
        const b = this.unacked.get(s);
        if (b === undefined) continue;
        this.unacked.delete(s);
        back.push(b);
      }
    }
    this.continues.push(seqText);
    this.kick();
    if (back.length > 0) this.events.returned(back);
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const [kind, value] of this.socket) {
        switch (kindOf(kind)) {
          case ACK: {
            const seq = Number(String(value));
            const batch = this.unacked.get(seq);
            if (batch !== undefined) {
              this.unacked.delete(seq);
              this.events.acked(batch);
            }
            break;
          }
          case NACK:
            this.nacked(String(value));
            break;
          case HELLO: {
            this.incarnation = String(value);
            const again = [...this.unacked.keys()];
            if (this.hellos++ > 0 && again.length > 0) this.events.resent(again.length);
            // Sent before this hello and still not acknowledged: lost with the old connection
            // (the hello comes after whatever the member received before it). Once more.
            this.sendQueue = again;
            this.greeted = true;
            this.kick();
            break;
          }
          default:
            break;
        }
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }
}
