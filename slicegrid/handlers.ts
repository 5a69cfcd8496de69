import type { EventEmitter } from 'node:events';
import { SliceGridHandlerError } from './errors.js';
import type { BlockInfo, BlockRequest, BlockSource, BlockSpec, CreateRequest, SliceGridEventName, SliceGridEvents } from './types.js';

/**
 * The grid's events as the applier uses them: `create` and `destroy` as a block source (the
 * form the grid had before block sources, and still its default), `added` and `removed` as
 * announcements. Listeners are called in the order they were added, with the grid as
 * `this`, each awaited before the next.
 */

/** The announced events: a step the grid took, for listeners to act on. */
export type AnnouncedEvent = Extract<SliceGridEventName, 'added' | 'removed'>;

/** How the applier tells the world what it did: the grid's `added` and `removed`. */
export interface Announcer {
  /** Whether anyone listens (to skip building the arguments). */
  listens(event: AnnouncedEvent): boolean;
  /** Calls the event's handlers in turn, awaiting each; the first failure fails the step. */
  announce(event: AnnouncedEvent, what: string, ...args: unknown[]): Promise<void>;
}

/** How errors name a block source's two calls. */
export interface SourceNames {
  create: string;
  destroy: string;
}

export const HANDLER_NAMES: SourceNames = { create: "the 'create' handler", destroy: "the 'destroy' handler" };
export const SOURCE_NAMES: SourceNames = { create: "the block source's create", destroy: "the block source's destroy" };

/** The listeners of the grid's events, awaited in turn. */
export function announcer(grid: EventEmitter): Announcer {
  return {
    listens: (event) => grid.listenerCount(event) > 0,
    async announce(event, what, ...args) {
      for (const listener of grid.rawListeners(event)) {
        try {
          await (listener as (...a: unknown[]) => unknown).apply(grid, args);
        } catch (error) {
          throw new SliceGridHandlerError(event, `the '${event}' handler failed for ${what}: ${messageOf(error)}; the grid is as it was`, error);
        }
      }
    },
  };
}

/**
 * The `create` and `destroy` listeners as a block source. `create` asks the listeners in
 * turn until one returns a block (one that returns undefined passes) and resolves with
 * what it returned, unchecked: the applier checks it, and says "it returned nothing" for
 * undefined. The listeners get the request without the context, as they always did.
 */
export class HandlerBlockSource implements BlockSource<unknown> {
  constructor(private readonly grid: EventEmitter) {}

  get canCreate(): boolean {
    return this.grid.listenerCount('create') > 0;
  }

  get canDestroy(): boolean {
    return this.grid.listenerCount('destroy') > 0;
  }

  async create(request: BlockRequest<unknown>): Promise<BlockSpec> {
    const asked: CreateRequest =
      request.slice === undefined
        ? { size: request.size, tags: request.tags, reason: request.reason }
        : { size: request.size, tags: request.tags, reason: request.reason, slice: request.slice };
    let spec: BlockSpec | undefined;
    for (const listener of this.grid.rawListeners('create')) {
      spec = await (listener as SliceGridEvents['create']).call(this.grid, asked);
      if (spec !== undefined) break;
    }
    return spec as BlockSpec;
  }

  async destroy(block: BlockInfo): Promise<void> {
    for (const listener of this.grid.rawListeners('destroy')) {
      await (listener as SliceGridEvents['destroy']).call(this.grid, block);
    }
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
