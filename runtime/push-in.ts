import { Router } from 'zeromq';
import { AckToken } from './ack-token.js';
import { PortCounters } from './counters.js';
import { BATCH, PROBE, kindOf } from './frames.js';
import { SendQueue } from './send-queue.js';
import type { Log } from './log.js';

/** What the runtime does with one received batch; resolves when the handler has finished. */
export type BatchHandler = (port: string, logs: Log[], token: AckToken) => Promise<void>;

/**
 * A push in port: binds a ROUTER that producers' DEALERs connect to. Greets each new connection
 * with this process's incarnation (so a producer knows to send its unacknowledged batches again),
 * hands batches to the handler one at a time in arrival order, and acknowledges each when its
 * token is released.
 */
export class PushInPort {
  readonly counters = new PortCounters('push', 'in');
  private readonly socket: Router;
  private readonly out: SendQueue;
  private closed = false;
  /** The endpoint bound (a wildcard port resolved). */
  endpoint = '';

  constructor(
    readonly name: string,
    private readonly bindTo: string,
    private readonly incarnation: string,
    queue: number,
    private readonly handle: BatchHandler,
  ) {
    this.socket = new Router({
      receiveHighWaterMark: queue,
      sendHighWaterMark: 0,
      linger: 0,
      handover: true,
      heartbeatInterval: 1000,
      heartbeatTimeout: 5000,
    });
    this.out = new SendQueue(this.socket);
  }

  async bind(): Promise<void> {
    await this.socket.bind(this.bindTo);
    this.endpoint = this.socket.lastEndpoint ?? this.bindTo;
  }

  /** Runs until closed; rejects when a handler throws. */
  async run(): Promise<void> {
    try {
      for await (const [peer, kind, seq, body] of this.socket) {
        const k = kindOf(kind);
        if (k === PROBE) {
          this.out.send([peer as Buffer, 'H', this.incarnation]);
        } else if (k === BATCH && seq !== undefined && body !== undefined) {
          const logs = JSON.parse(body.toString('utf8')) as Log[];
          this.counters.batchesIn++;
          const token = new AckToken(() => this.out.send([peer as Buffer, 'A', seq]));
          await this.handle(this.name, logs, token);
          this.counters.logsIn += logs.length;
        }
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  close(): void {
    this.closed = true;
    this.out.close();
    this.socket.close();
  }
}
