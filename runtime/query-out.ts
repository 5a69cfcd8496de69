import { randomUUID } from 'node:crypto';
import { Dealer } from 'zeromq';
import { PortCounters } from './counters.js';
import { ElementStoppedError, NoPeersError, QueryFailedError, QueryTimeoutError } from './errors.js';
import { FAILURE, REPLY, kindOf } from './frames.js';
import type { Member, Target } from './wiring.js';

interface Pending {
  resolve(answer: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The asker's end of a query connection to one member: a DEALER, the queries in flight by id,
 * and a send queue (ZeroMQ takes one blocked send at a time; a query that timed out while
 * queued is not sent).
 */
export class QueryLink {
  private readonly socket: Dealer;
  private readonly pending = new Map<string, Pending>();
  private readonly queue: { id: string; body: string }[] = [];
  private sending = false;
  private closed = false;
  private readonly prefix = randomUUID().slice(0, 8);
  private nextId = 1;

  constructor(
    readonly port: string,
    readonly member: Member,
  ) {
    this.socket = new Dealer({
      linger: 0,
      reconnectInterval: 100,
      reconnectMaxInterval: 1000,
      heartbeatInterval: 1000,
      heartbeatTimeout: 5000,
    });
    this.socket.connect(member.endpoint);
    void this.receiveLoop();
  }

  ask(request: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new ElementStoppedError(`query port '${this.port}' has stopped`));
    const id = `${this.prefix}.${this.nextId++}`;
    const body = JSON.stringify(request ?? null);
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QueryTimeoutError(this.port, this.member.id, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.queue.push({ id, body });
      if (!this.sending) void this.sendLoop();
    });
  }

  private async sendLoop(): Promise<void> {
    this.sending = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const { id, body } = this.queue.shift() as { id: string; body: string };
        if (!this.pending.has(id)) continue;
        await this.socket.send(['Q', id, body]);
      }
    } catch (err) {
      if (!this.closed) throw err;
    } finally {
      this.sending = false;
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const [kind, id, body] of this.socket) {
        const pending = id === undefined ? undefined : this.pending.get(id.toString());
        if (pending === undefined) continue; // late: it timed out
        this.pending.delete((id as Buffer).toString());
        clearTimeout(pending.timer);
        const k = kindOf(kind);
        const text = body?.toString('utf8') ?? 'null';
        if (k === REPLY) {
          try {
            pending.resolve(JSON.parse(text));
          } catch (err) {
            pending.reject(err as Error);
          }
        } else if (k === FAILURE) pending.reject(new QueryFailedError(this.port, this.member.id, text));
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  close(): void {
    this.closed = true;
    this.socket.close();
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ElementStoppedError(`query port '${this.port}' has stopped`));
    }
    this.pending.clear();
  }
}

/** A query out port: asks every member of every target at once. */
export class QueryOutPort {
  readonly counters = new PortCounters('query', 'out');
  private links: QueryLink[] = [];

  constructor(
    readonly name: string,
    targets: Target[],
    private readonly timeoutMs: number,
  ) {
    this.setTargets(targets);
  }

  /** Every member's answer, in member order; rejects with the first failure. */
  async askEach(request: unknown, timeoutMs = this.timeoutMs): Promise<unknown[]> {
    const links = this.links;
    if (links.length === 0) throw new NoPeersError(this.name);
    const started = performance.now();
    this.counters.queries++;
    try {
      const answers = await Promise.all(links.map((l) => l.ask(request, timeoutMs)));
      this.counters.latency(performance.now() - started);
      return answers;
    } catch (err) {
      if (err instanceof QueryTimeoutError) this.counters.queryTimeouts++;
      else this.counters.queryErrors++;
      throw err;
    }
  }

  setTargets(targets: Target[]): void {
    const old = new Map(this.links.map((l) => [`${l.member.id}@${l.member.endpoint}`, l]));
    const next: QueryLink[] = [];
    for (const member of targets.flatMap((t) => t.members)) {
      const key = `${member.id}@${member.endpoint}`;
      const link = old.get(key);
      if (link !== undefined) {
        old.delete(key);
        next.push(link);
      } else next.push(new QueryLink(this.name, member));
    }
    for (const link of old.values()) link.close();
    this.links = next;
  }

  peers(): string[] {
    return this.links.map((l) => l.member.endpoint);
  }

  close(): void {
    for (const link of this.links) link.close();
    this.links = [];
  }
}
