import type { AckToken } from './ack-token.js';
import { OutBatch } from './out-batch.js';
import { PushLink } from './push-link.js';
import { fnv1a, memberForKey } from './spread.js';
import { hashFieldOf, type Member, type Target } from './wiring.js';
import type { Log } from './log.js';

/** What a group tells its port. */
export interface PushGroupEvents {
  /** A batch was acknowledged: the room it held is free. */
  acked(batch: OutBatch): void;
  /** Batches were sent again (a consumer restarted or reconnected). */
  resent(count: number): void;
  /** Batches came back unhandled (NACKs) and wait again, ahead of later ones. */
  returned(count: number): void;
  /** A hold ended (released, or its time ran out): waiting batches were placed. */
  released(): void;
}

/**
 * One target of a push out port: the members of one element, and how logs spread over them.
 * Round-robin fills one batch at a time and gives it to the next member with room; a hash
 * spread keeps a batch per member. A sealed batch no member can take waits here, and while
 * any waits, the port is full.
 *
 * A hold (re-sharding) hands no batch to any member until it is released or its time runs out:
 * sealed batches wait, so the port is full and emit waits. A batch a member gives back (NACK)
 * waits again in its order (the order batches were opened), ahead of later ones, so a key's logs
 * keep their order when they are sent again.
 */
export class PushGroup {
  private links: PushLink[] = [];
  private memberHashes: number[] = [];
  private readonly hashField: string | undefined;
  private open: (OutBatch | undefined)[] = [];
  private readonly waiting: OutBatch[] = [];
  private cursor = 0;
  /** The order of the next batch opened. */
  private nextOrder = 1;
  private holdTimer: NodeJS.Timeout | undefined;
  /** `idle()` calls waiting for nothing to be in flight. */
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  /** Logs in sealed batches waiting for room. */
  waitingLogs = 0;
  /** Batches given back by members (NACKs), since the start. */
  batchesReturned = 0;

  constructor(
    readonly target: Target,
    private readonly batchSize: number,
    private readonly capacity: number,
    private readonly events: PushGroupEvents,
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

  /** Whether a hold is on. */
  get held(): boolean {
    return this.holdTimer !== undefined;
  }

  /** Logs handed to members and not acknowledged (nor given back). */
  get inFlight(): number {
    return this.inFlightAt(undefined);
  }

  /**
   * Logs in flight at the members that matter for a re-shard: every member for a hash spread
   * (any key may move); for round-robin, only the members whose incarnation is in `only` (those
   * that gave their queues back: the ones that leave), or every member without `only`.
   */
  inFlightAt(only: ReadonlySet<string> | undefined): number {
    const all = only === undefined || this.hashField !== undefined;
    let n = 0;
    for (const link of this.links) if (all || (link.incarnation !== undefined && only.has(link.incarnation))) n += link.heldLogs;
    return n;
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
      batch.order = this.nextOrder++;
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

  /** Hands waiting batches to members with room, oldest first (none while held). */
  place(): void {
    if (this.holdTimer !== undefined) return;
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
   * Holds the group: no batch goes to any member until release() or until `ms` pass (the
   * safety expiry: a controller that dies leaves no producer stuck). A hold while held starts
   * the time again. Returns the logs in flight.
   */
  hold(ms: number): number {
    if (this.closed) return 0;
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => this.release(), ms);
    this.holdTimer.unref?.();
    return this.inFlight;
  }

  /** Ends a hold (if any): waiting batches are placed. Returns the logs in flight. */
  release(): number {
    if (this.holdTimer !== undefined) {
      clearTimeout(this.holdTimer);
      this.holdTimer = undefined;
      this.place();
      this.events.released();
    }
    return this.inFlight;
  }

  /**
   * Resolves with the logs in flight (inFlightAt(only)) once none are, or after `ms` with those
   * still in flight.
   */
  idle(ms: number, only?: ReadonlySet<string>): Promise<number> {
    const left = () => this.inFlightAt(only);
    if (left() === 0 || this.closed || ms <= 0) return Promise.resolve(left());
    return new Promise<number>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters = this.idleWaiters.filter((w) => w !== check);
        resolve(left());
      };
      const check = () => {
        if (left() === 0 || this.closed) done();
      };
      const timer = setTimeout(done, ms);
      this.idleWaiters.push(check);
    });
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0) return;
    for (const check of [...this.idleWaiters]) check();
  }

  private linkEvents() {
    return {
      acked: (batch: OutBatch) => {
        this.events.acked(batch);
        this.checkIdle();
      },
      resent: (n: number) => this.events.resent(n),
      returned: (batches: OutBatch[]) => this.giveBack(batches),
    };
  }

  /** Batches a member gave back: they wait again in their order, spread again by hash. */
  private giveBack(batches: OutBatch[]): void {
    if (this.closed) {
      for (const batch of batches) batch.settle();
      return;
    }
    for (const batch of batches) for (const part of this.respread(batch)) this.insert(part);
    this.batchesReturned += batches.length;
    this.place();
    this.events.returned(batches.length);
    this.checkIdle();
  }

  /** Puts a batch among the waiting ones after every batch of its order or older. */
  private insert(batch: OutBatch): void {
    let i = this.waiting.length;
    while (i > 0 && (this.waiting[i - 1] as OutBatch).order > batch.order) i--;
    this.waiting.splice(i, 0, batch);
    this.waitingLogs += batch.logs.length;
  }

  /**
   * Changes the members: new ones are connected, gone ones closed, and the batches a gone
   * member had not acknowledged are spread again over the members now there. A hold stays on
   * (what was spread again waits for the release).
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
      } else next.push(new PushLink(member, this.capacity, this.linkEvents(), this.batchSize));
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
    // Logs bound for a member by hash may now belong to another: spread them again, in the
    // order the batches were opened (a key's logs keep their order).
    const again = [...orphans, ...waiting, ...unsealed].sort((a, b) => a.order - b.order);
    for (const batch of again) {
      for (const part of this.respread(batch)) {
        this.waiting.push(part);
        this.waitingLogs += part.logs.length;
      }
    }
    this.flush();
    // Hand them out now: a port that was full (its member gone silent) gets neither a new batch
    // nor an acknowledgement that would otherwise do it.
    this.place();
    this.checkIdle();
    return orphans.length;
  }

  /** A batch split by the members its logs belong to now (as it is, for round-robin). */
  private respread(batch: OutBatch): OutBatch[] {
    const field = this.links.length > 0 ? this.hashField : undefined;
    const parts = new Map<number, Log[]>();
    if (field === undefined) {
      if (batch.memberIndex < 0) return [batch];
      parts.set(-1, batch.logs);
    } else {
      for (const log of batch.logs) {
        const index = memberForKey(log[field], this.memberHashes);
        let part = parts.get(index);
        if (part === undefined) parts.set(index, (part = []));
        part.push(log);
      }
    }
    const out: OutBatch[] = [];
    for (const [index, logs] of parts) {
      const copy = new OutBatch(index);
      copy.order = batch.order;
      for (const log of logs) copy.logs.push(log);
      for (const token of batch.tokens) {
        token.hold();
        copy.tokens.push(token);
      }
      out.push(copy);
    }
    batch.settle();
    return out;
  }

  /** Logs held: open, waiting, and sent but not acknowledged. */
  heldLogs(): number {
    let n = this.waitingLogs;
    for (const batch of this.open) n += batch?.logs.length ?? 0;
    for (const link of this.links) n += link.heldLogs;
    return n;
  }

  close(): void {
    this.closed = true;
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    for (const link of this.links) for (const batch of link.close()) batch.settle();
    for (const batch of this.waiting.splice(0)) batch.settle();
    for (const batch of this.open) batch?.settle();
    this.open = [];
    this.links = [];
    this.waitingLogs = 0;
    this.checkIdle();
  }
}
