import { Router } from 'zeromq';
import { PortCounters } from './counters.js';
import { QUERY, kindOf } from './frames.js';
import { SendQueue } from './send-queue.js';

/** What the runtime does with one query: its answer (JSON-able), or a throw. */
export type QueryHandler = (port: string, request: unknown) => Promise<unknown>;

/**
 * A query in port: binds a ROUTER that askers' DEALERs connect to. Runs up to `concurrency`
 * handlers at once and answers each query with its id, so answers may come back in any order.
 * The control socket is one of these too.
 */
export class QueryInPort {
  readonly counters = new PortCounters('query', 'in');
  private readonly socket: Router;
  private readonly out: SendQueue;
  private closed = false;
  private running = 0;
  private slotFree: (() => void) | undefined;
  endpoint = '';

  constructor(
    readonly name: string,
    private readonly bindTo: string,
    private readonly concurrency: number,
    private readonly handle: QueryHandler,
  ) {
    this.socket = new Router({ linger: 0, handover: true, sendHighWaterMark: 0 });
    this.out = new SendQueue(this.socket);
    // Its queue: the queries being answered, at most `concurrency`; when all run, it reads no
    // more and askers' queries wait in ZeroMQ.
    this.counters.queueState = () => ({ queueLimit: this.concurrency, backpressure: this.running >= this.concurrency });
  }

  async bind(): Promise<void> {
    await this.socket.bind(this.bindTo);
    this.endpoint = this.socket.lastEndpoint ?? this.bindTo;
  }

  async run(): Promise<void> {
    try {
      for await (const [peer, kind, id, body] of this.socket) {
        if (kindOf(kind) !== QUERY || id === undefined || body === undefined) continue;
        while (this.running >= this.concurrency) await new Promise<void>((r) => (this.slotFree = r));
        this.running++;
        this.counters.queued++;
        void this.answer(peer as Buffer, id, body);
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  private async answer(peer: Buffer, id: Buffer, body: Buffer): Promise<void> {
    const started = performance.now();
    this.counters.queries++;
    let reply: [Buffer, string, Buffer, string];
    try {
      const request: unknown = JSON.parse(body.toString('utf8'));
      const answer = await this.handle(this.name, request);
      reply = [peer, 'R', id, JSON.stringify(answer ?? null)];
    } catch (err) {
      this.counters.queryErrors++;
      reply = [peer, 'E', id, err instanceof Error ? err.message : String(err)];
    }
    this.counters.latency(performance.now() - started);
    this.running--;
    this.counters.queued--;
    const free = this.slotFree;
    this.slotFree = undefined;
    free?.();
    this.out.send(reply);
  }

  close(): void {
    this.closed = true;
    this.out.close();
    this.socket.close();
  }
}
