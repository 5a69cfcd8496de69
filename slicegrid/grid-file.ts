import { atomicWriteAsync, readIfExists, removeStaleTemporaries } from '../home/index.js';
import { SliceGridFileError } from './errors.js';

/**
 * The grid's file: read once when the grid opens, then rewritten whole and atomically after
 * changes. Writes are coalesced (group commit): while one write is on its way to disk, the
 * changes that follow wait for the next one, which carries all of them at once. A change's
 * promise resolves once a write that contains it is durable.
 */
export class GridFile {
  private inFlight: Promise<void> | undefined;
  private following: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | undefined;

  /**
   * @param snapshot the grid's committed state as text, taken when no call is half-way through
   */
  constructor(
    readonly path: string,
    private readonly snapshot: () => Promise<string>,
  ) {}

  /** The file's JSON, or undefined when there is no file yet. */
  async load(): Promise<unknown> {
    let text: string | undefined;
    try {
      await removeStaleTemporaries(this.path);
      text = await readIfExists(this.path);
    } catch (error) {
      throw new SliceGridFileError(`cannot read the grid file ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new SliceGridFileError(
        `the grid file ${this.path} is not valid JSON (${(error as Error).message}); restore it from a backup or move it away to start an empty grid`,
        { cause: error },
      );
    }
  }

  /**
   * Saves the state after a change. `now`, when given, is the committed state at this
   * moment (the caller holds the grid's queue) and is written at once if the disk is idle.
   */
  save(now?: () => string): Promise<void> {
    if (this.inFlight === undefined) return this.start(now);
    if (this.following === undefined) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.following = { promise, resolve, reject };
    }
    return this.following.promise;
  }

  /** Resolves when every save asked for so far is on disk (or failed). */
  async flush(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight.catch(() => undefined);
  }

  private start(now?: () => string): Promise<void> {
    const write = (async () => {
      const text = now === undefined ? await this.snapshot() : now();
      try {
        await atomicWriteAsync(this.path, text);
      } catch (error) {
        throw new SliceGridFileError(
          `cannot write the grid file ${this.path}: ${(error as Error).message}; the change is kept in memory and the next change writes again`,
          { cause: error },
        );
      }
    })();
    const done = (): void => {
      this.inFlight = undefined;
      const next = this.following;
      if (next !== undefined) {
        this.following = undefined;
        this.start().then(next.resolve, next.reject);
      }
    };
    this.inFlight = write.then(done, done);
    return write;
  }
}
