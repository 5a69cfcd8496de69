import { Dealer } from 'zeromq';
import { ACK, BATCH, HELLO, kindOf } from './frames.js';
import type { OutBatch } from './out-batch.js';
import type { Member } from './wiring.js';

export interface PushLinkEvents {
  /** A batch was acknowledged: the room it held is free. */
  acked(batch: OutBatch): void;
  /** Batches were sent again (a consumer restarted or reconnected). */
  resent(count: number): void;
}

/**
 * The producer's end of a push connection to one consumer member: a DEALER to the member's
 * ROUTER, and the batches that member has not acknowledged. On every new connection (the first,
 * a restarted member, a broken connection come back: ZeroMQ's `connect` event) it sends a probe
 * and stops sending batches until the member's hello answers it; then it sends every batch not
 * yet acknowledged, in order. (ZeroMQ's own probeRouter is sent on the first connection only.)
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
      while (!this.closed && (this.probes > 0 || (this.greeted && this.sendQueue.length > 0))) {
        if (this.probes > 0) {
          this.probes = 0;
          // `P window batch`: the consumer reports its queue against them.
          await this.socket.send(['P', String(this.capacity), String(this.batchSize)]);
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
