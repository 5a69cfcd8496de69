import { LockWaitTimeout } from './errors.js';

/** Who holds a lock: the description it was asked with, and since when it holds it. */
export interface LockHolder {
  description: string;
  since: Date;
}

/** How one `acquire` asks for a lock. Every part is optional. */
export interface LockRequest {
  /** Who asks, e.g. `the push of shop by key alice@laptop (SHA256:…)`: told to those who wait behind it. */
  holder?: string;
  /** Called once, when the lock is held by another: with who holds it. */
  waiting?: (holder: LockHolder) => void;
  /** Give up after this long (ms): `acquire` then rejects with a `LockWaitTimeout` naming the holder. */
  timeoutMs?: number;
  /** Give up when this is aborted: `acquire` then rejects with the signal's reason. */
  signal?: AbortSignal;
}

interface Entry {
  description: string;
  since: Date;
  grant(): void;
}

/** A request that gave its name as nothing. */
const UNNAMED = 'another change of this stack';

/**
 * One push of a stack at a time: a second push of the same stack waits for the first to
 * finish (its receive-pack to exit), so that checks, builds and the `src` swap never
 * interleave. Pushes of different stacks run side by side. The same for a stack's tasks
 * (hq/deploy/), in their own instance.
 *
 * Each key has a queue: its head holds the lock, the others wait in order. A waiter that gives
 * up (its time ran out, or its signal was aborted) leaves the queue and the others keep
 * their places; each holder is remembered by the description it asked with, so that those who
 * wait, or give up, are told who they waited for.
 */
export class StackLocks {
  private readonly queues = new Map<string, Entry[]>();

  /** Whether a change of the stack holds its lock or waits for it now. */
  busy(stack: string): boolean {
    return this.queues.has(stack);
  }

  /** Who holds the stack's lock now, if anyone. */
  holder(stack: string): LockHolder | undefined {
    const head = this.queues.get(stack)?.[0];
    return head && { description: head.description, since: head.since };
  }

  /**
   * Resolves with the function that releases the lock (calling it again does nothing). Rejects
   * with a `LockWaitTimeout` once `timeoutMs` has passed, or with the signal's reason once it
   * is aborted, if the lock was not got by then.
   */
  acquire(stack: string, request: LockRequest = {}): Promise<() => void> {
    const { signal, timeoutMs } = request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      // Settled once, by whichever comes first: the lock, the time-out or the abort.
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        settled = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const entry: Entry = {
        description: request.holder ?? UNNAMED,
        since: new Date(),
        grant: () => {
          if (settled) return;
          settle();
          resolve(() => this.release(stack, entry));
        },
      };
      const onAbort = () => {
        if (settled) return;
        settle();
        this.leave(stack, entry);
        reject(signal!.reason);
      };
      const queue = this.queues.get(stack) ?? [];
      queue.push(entry);
      this.queues.set(stack, queue);
      if (queue.length === 1) return entry.grant();

      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        request.waiting?.(this.holder(stack)!);
      } catch (err) {
        // A waiter that cannot even be told must not stay queued: its turn would never be let go.
        settle();
        this.leave(stack, entry);
        return reject(err);
      }
      if (settled) return; // `waiting` may have aborted
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (settled) return;
          const holder = this.holder(stack)!;
          settle();
          this.leave(stack, entry);
          reject(new LockWaitTimeout(stack, holder, timeoutMs));
        }, timeoutMs);
      }
    });
  }

  /** The holder lets go: the next in the queue, if any, holds the lock from now. */
  private release(stack: string, entry: Entry): void {
    const queue = this.queues.get(stack);
    if (!queue || queue[0] !== entry) return;
    queue.shift();
    const next = queue[0];
    if (!next) {
      this.queues.delete(stack);
      return;
    }
    next.since = new Date();
    next.grant();
  }

  /** A waiter gives up: it leaves the queue, the others keep their order. */
  private leave(stack: string, entry: Entry): void {
    const queue = this.queues.get(stack);
    const at = queue?.indexOf(entry) ?? -1;
    if (at > 0) queue!.splice(at, 1);
  }
}
