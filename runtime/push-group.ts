import type { AckToken } from './ack-token.js';
import { OutBatch } from './out-batch.js';
import { PushLink, type PushLinkEvents } from './push-link.js';
import { fnv1a, memberForKey } from './spread.js';
import { hashFieldOf, type Member, type Target } from './wiring.js';
import type { Log } from './log.js';

/**
 * One target of a push out port: the members of one element, and how logs spread over them.
 * Round-robin fills one batch at a time and gives it to the next member with room; a hash
 * spread keeps a batch per member. A sealed batch no member can take waits here, and while
 * any waits, the port is full.
 */
export class PushGroup {
  private links: PushLink[] = [];
  private memberHashes: number[] = [];
  private readonly hashField: string | undefined;
  private open: (OutBatch | undefined)[] = [];
  private readonly waiting: OutBatch[] = [];
  private cursor = 0;
  /** Logs in sealed batches waiting for room. */
  waitingLogs = 0;

  constructor(
    readonly target: Target,
    private readonly batchSize: number,
    private readonly capacity: number,
    private readonly events: PushLinkEvents,
  ) {
    this.hashField = hashFieldOf(target);
    this.setMembers(target.members);
  }

  get key(): string {
    return `${this.target.element}.${this.target.port}`;
  }

  get full(): boolean {
    return this.waiting.length > 0;
  }

  get endpoints(): string[] {
    return this.links.map((l) => l.member.endpoint);
  }

  /** Adds a log; returns true when a batch was sealed. */
  add(log: Log, token: AckToken | undefined, now: () => number): boolean {
    let index = 0;
    if (this.hashField !== undefined) {
      if (this.links.length === 0) index = -1;
      else index = memberForKey(log[this.hashField], this.memberHashes);
    }
    const slot = index < 0 ? 0 : index;
    let batch = this.open[slot];
    if (batch === undefined) {
      batch = new OutBatch(index < 0 || this.hashField === undefined ? -1 : index);
      batch.openedAt = now();
      this.open[slot] = batch;
    }
    batch.add(log, token);
    if (batch.logs.length >= this.batchSize) {
      this.open[slot] = undefined;
      this.seal(batch);
      return true;
    }
    return false;
  }

  /** Seals open batches older than `before` (all when undefined); the oldest opening time left. */
  flush(before?: number): number | undefined {
    let oldest: number | undefined;
    for (let i = 0; i < this.open.length; i++) {
      const batch = this.open[i];
      if (batch === undefined) continue;
      if (before === undefined || batch.openedAt <= before) {
        this.open[i] = undefined;
        this.seal(batch);
      } else if (oldest === undefined || batch.openedAt < oldest) oldest = batch.openedAt;
    }
    return oldest;
  }

  hasOpen(): boolean {
    return this.open.some((b) => b !== undefined);
  }

  private seal(batch: OutBatch): void {
    this.waiting.push(batch);
    this.waitingLogs += batch.logs.length;
    this.place();
  }

  /** Hands waiting batches to members with room, oldest first. */
  place(): void {
    while (this.waiting.length > 0) {
      const batch = this.waiting[0] as OutBatch;
      const link = this.linkFor(batch);
      if (link === undefined) return;
      this.waiting.shift();
      this.waitingLogs -= batch.logs.length;
      link.enqueue(batch);
    }
  }

  private linkFor(batch: OutBatch): PushLink | undefined {
    const n = this.links.length;
    if (n === 0) return undefined;
    if (batch.memberIndex >= 0) {
      const link = this.links[batch.memberIndex];
      return link !== undefined && link.room > 0 ? link : undefined;
    }
    for (let i = 0; i < n; i++) {
      const link = this.links[(this.cursor + i) % n] as PushLink;
      if (link.room > 0) {
        this.cursor = (this.cursor + i + 1) % n;
        return link;
      }
    }
    return undefined;
  }

  /**
   * Changes the members: new ones are connected, gone ones closed, and the batches a gone
   * member had not acknowledged are spread again over the members now there.
   */
  setMembers(members: Member[]): number {
    const keep = new Map(this.links.map((l) => [`${l.member.id}@${l.member.endpoint}`, l]));
    const next: PushLink[] = [];
    for (const member of members) {
      const id = `${member.id}@${member.endpoint}`;
      const link = keep.get(id);
      if (link !== undefined) {
        keep.delete(id);
        next.push(link);
      } else next.push(new PushLink(member, this.capacity, this.events, this.batchSize));
    }
    const orphans: OutBatch[] = [];
    for (const link of keep.values()) orphans.push(...link.close());
    const unsealed = this.open.filter((b): b is OutBatch => b !== undefined);
    const waiting = this.waiting.splice(0);
    this.waitingLogs = 0;
    this.open = [];
    this.links = next;
    this.memberHashes = next.map((l) => fnv1a(l.member.id));
    this.cursor = 0;
    // Logs bound for a member by hash may now belong to another: spread them again.
    const again = [...orphans, ...waiting, ...unsealed];
    for (const batch of again) this.respread(batch);
    this.flush();
    // Hand them out now: a port that was full (its member gone silent) gets neither a new batch
    // nor an acknowledgement that would otherwise do it.
    this.place();
    return orphans.length;
  }

  private respread(batch: OutBatch): void {
    const field = this.links.length > 0 ? this.hashField : undefined;
    const parts = new Map<number, Log[]>();
    if (field === undefined) parts.set(-1, batch.logs);
    else {
      for (const log of batch.logs) {
        const index = memberForKey(log[field], this.memberHashes);
        let part = parts.get(index);
        if (part === undefined) parts.set(index, (part = []));
        part.push(log);
      }
    }
    for (const [index, logs] of parts) {
      const copy = new OutBatch(index);
      for (const log of logs) copy.logs.push(log);
      for (const token of batch.tokens) {
        token.hold();
        copy.tokens.push(token);
      }
      this.waiting.push(copy);
      this.waitingLogs += logs.length;
    }
    batch.settle();
  }

  /** Logs held: open, waiting, and sent but not acknowledged. */
  heldLogs(): number {
    let n = this.waitingLogs;
    for (const batch of this.open) n += batch?.logs.length ?? 0;
    for (const link of this.links) n += link.heldLogs;
    return n;
  }

  close(): void {
    for (const link of this.links) for (const batch of link.close()) batch.settle();
    for (const batch of this.waiting.splice(0)) batch.settle();
    for (const batch of this.open) batch?.settle();
    this.open = [];
    this.links = [];
  }
}
