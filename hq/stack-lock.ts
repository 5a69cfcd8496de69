/**
 * One push of a stack at a time: a second push of the same stack waits for the first to
 * finish (its receive-pack to exit), so that checks, builds and the `src` swap never
 * interleave. Pushes of different stacks run side by side.
 */
export class StackLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Whether a change of the stack holds its lock or waits for it now. */
  busy(stack: string): boolean {
    return this.tails.has(stack);
  }

  /** Resolves with the function that releases the lock; `waiting` is called if it must wait. */
  async acquire(stack: string, waiting?: () => void): Promise<() => void> {
    const before = this.tails.get(stack);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const tail = (before ?? Promise.resolve()).then(() => mine);
    this.tails.set(stack, tail);
    if (before) {
      waiting?.();
      await before;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (this.tails.get(stack) === tail) this.tails.delete(stack);
    };
  }
}
