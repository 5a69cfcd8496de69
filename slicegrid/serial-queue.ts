/**
 * Runs tasks one at a time, in the order they were queued: the grid's calls are
 * serialised so that a full grid asks `create` once, not once per waiting call.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.then(ignore, ignore);
    return result;
  }
}

function ignore(): void {}
