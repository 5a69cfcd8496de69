import type { AckToken } from './ack-token.js';
import { PortCounters } from './counters.js';
import { ElementStoppedError, WiringError } from './errors.js';
import type { Log } from './log.js';
import type { OutBatch } from './out-batch.js';
import { PushGroup } from './push-group.js';
import type { PortTuning, Target } from './wiring.js';

/**
 * A push out port: every log goes to every target (fan-out), batched; the port is full while
 * any target has a sealed batch that no member has room for, and emit() then waits.
 */
export class PushOutPort {
  readonly counters = new PortCounters('push', 'out');
  private groups: PushGroup[] = [];
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When the first of the current waiters began to wait. */
  private blockedSince = 0;
  private readonly now = () => performance.now();

  constructor(
    readonly name: string,
    targets: Target[],
    private readonly tuning: Required<PortTuning>,
  ) {
    // A block still going on counts up to the snapshot (wake() adds the whole span once it ends).
    this.counters.blockedNow = () => (this.waiters.length > 0 ? this.now() - this.blockedSince : 0);
    this.setTargets(targets);
  }

  get full(): boolean {
    for (const group of this.groups) if (group.full) return true;
    return false;
  }

  /** Takes a log; a promise when the port is now full (resolves when it has room again). */
  push(log: Log, token: AckToken | undefined): Promise<void> | undefined {
    if (this.stopped) return Promise.reject(new ElementStoppedError(`port '${this.name}' has stopped`));
    this.add(log, token);
    return this.full ? this.room() : undefined;
  }

  /** Takes logs; a promise when the port is now full. */
  pushMany(logs: readonly Log[], token: AckToken | undefined): Promise<void> | undefined {
    if (this.stopped) return Promise.reject(new ElementStoppedError(`port '${this.name}' has stopped`));
    for (let i = 0; i < logs.length; i++) this.add(logs[i] as Log, token);
    return this.full ? this.room() : undefined;
  }

  private add(log: Log, token: AckToken | undefined): void {
    const groups = this.groups;
    for (let i = 0; i < groups.length; i++) {
      (groups[i] as PushGroup).add(log, token, this.now);
      this.counters.hold(1);
    }
    this.counters.logsOut++;
    if (this.timer === undefined) this.armFlush(this.tuning.flushMs);
  }

  /** Resolves when the port has room (at once if it has). */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    if (this.waiters.length === 0) this.blockedSince = this.now();
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Sends every open batch now (a source that ended, a stop). */
  flush(): void {
    for (const group of this.groups) group.flush();
  }

  /** Resolves when every log taken so far is acknowledged (or the port stopped). */
  async drained(signal?: AbortSignal): Promise<void> {
    this.flush();
    while (this.counters.heldLogs > 0 && !this.stopped && signal?.aborted !== true) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** New peers: connects to new members and spreads a removed member's logs over the rest. */
  setTargets(targets: Target[]): void {
    const old = new Map(this.groups.map((g) => [g.key, g]));
    const next: PushGroup[] = [];
    for (const target of targets) {
      const key = `${target.element}.${target.port}`;
      const group = old.get(key);
      if (group !== undefined) {
        old.delete(key);
        const resent = group.setMembers(target.members);
        this.counters.batchesResent += resent;
        next.push(group);
      } else {
        next.push(
          new PushGroup(target, this.tuning.batch, this.tuning.queue, {
            acked: (batch) => this.acked(batch),
            resent: (n) => (this.counters.batchesResent += n),
            returned: (n) => {
              this.counters.batchesReturned += n;
              this.wake();
            },
            released: () => this.wake(),
          }),
        );
      }
    }
    for (const group of old.values()) {
      group.close();
    }
    this.groups = next;
    this.recount();
    this.wake();
  }

  /** The group of a target (`<element>.<port>`), or a WiringError naming the port's targets. */
  private group(target: string): PushGroup {
    const group = this.groups.find((g) => g.key === target);
    if (group === undefined) {
      const known = this.groups.map((g) => g.key);
      throw new WiringError(`push out port '${this.name}' has no target '${target}' (its targets: ${known.length > 0 ? known.join(', ') : 'none'})`);
    }
    return group;
  }

  /**
   * Re-sharding: hands no batch of `target` to any member until release() or `ms` pass. New
   * logs still come in; the port fills and emit waits. Returns the logs in flight.
   */
  hold(target: string, ms: number): number {
    return this.group(target).hold(ms);
  }

  /** Ends a hold on `target` (nothing if none); returns the logs in flight. */
  release(target: string): number {
    return this.group(target).release();
  }

  /**
   * Resolves with the logs of `target` in flight once none are, or after `ms`. For a
   * round-robin target with `only`: at the members of those incarnations only.
   */
  idle(target: string, ms: number, only?: ReadonlySet<string>): Promise<number> {
    return this.group(target).idle(ms, only);
  }

  peers(): string[] {
    return this.groups.flatMap((g) => g.endpoints);
  }

  close(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const group of this.groups) group.close();
    this.groups = [];
    this.counters.heldLogs = 0;
    this.wake();
  }

  private acked(batch: OutBatch): void {
    const n = batch.logs.length;
    this.counters.logsAcked += n;
    this.counters.batchesOut++;
    this.counters.heldLogs -= n;
    batch.settle();
    for (const group of this.groups) group.place();
    this.wake();
  }

  private wake(): void {
    if (this.waiters.length === 0 || this.full) return;
    const waiters = this.waiters;
    this.waiters = [];
    this.counters.blockedMs += this.now() - this.blockedSince;
    for (const w of waiters) w();
  }

  /** The flush timer: seals batches that have been open for flushMs. */
  private armFlush(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      let oldest: number | undefined;
      const before = this.now() - this.tuning.flushMs;
      for (const group of this.groups) {
        const left = group.flush(before);
        if (left !== undefined && (oldest === undefined || left < oldest)) oldest = left;
      }
      if (oldest !== undefined) this.armFlush(Math.max(1, oldest + this.tuning.flushMs - this.now()));
    }, ms);
  }

  /** After a change of targets, what the groups hold is what the port holds. */
  private recount(): void {
    // Logs of a removed target were given up (their acknowledgements released).
    let held = 0;
    for (const group of this.groups) held += group.heldLogs();
    this.counters.heldLogs = held;
  }
}
