/** Sizes are whole megabytes throughout, like `memory:` in quarry.yml. */

/** What the caller asks to place: one container's reservation. */
export interface SliceRequest {
  /** Unique in the grid; quarry uses `<stack>.<name>.<n>`. */
  id: string;
  /** MB. */
  size: number;
  /** Constraints: the slice only goes on a block that has every one of these tags. */
  tags?: readonly string[];
  /**
   * Replicas of one group are spread over different blocks when existing blocks have room.
   * Omitted: taken from the id when it reads `<prefix>.<n>` (so `shop.web.3` is in group
   * `shop.web`); `null`: no group.
   */
  group?: string | null;
}

/** A server as the grid needs to know it: what `create` returns and `addBlock` takes. */
export interface BlockSpec {
  id: string;
  /** MB. */
  size: number;
  tags?: readonly string[];
}

/** A slice as the grid reports it. */
export interface SliceInfo {
  id: string;
  size: number;
  tags: readonly string[];
  group: string | null;
  /** The id of the block it is on. */
  block: string;
}

/** A block as the grid reports it. */
export interface BlockInfo {
  id: string;
  size: number;
  used: number;
  free: number;
  tags: readonly string[];
  /** Slice ids, sorted. */
  slices: string[];
}

/** What `create` is asked for. */
export interface CreateRequest {
  /** MB: the grid's `blockSize`. */
  size: number;
  /** Tags the new block must have: those of the slice that found no room. */
  tags: readonly string[];
  /** `full`: a slice found no room; `min`: the grid has fewer blocks than `min`. */
  reason: 'full' | 'min';
  /** The slice that found no room (reason `full`); it is not in the grid yet. */
  slice?: Omit<SliceInfo, 'block'>;
}

/**
 * The events, each awaited in turn: a handler may return a promise, and the call that
 * caused the event waits for it. A handler that throws or rejects fails the call.
 */
export interface SliceGridEvents {
  /**
   * The grid needs a new server: make it and return its details. Listeners are asked in
   * turn until one returns a block; one that returns undefined passes.
   */
  create: (request: CreateRequest) => BlockSpec | undefined | Promise<BlockSpec | undefined>;
  /** A block is empty and the grid shrinks: destroy the server. */
  destroy: (block: BlockInfo) => unknown;
  /** A slice was placed on a block: start its container. */
  added: (block: BlockInfo, slice: SliceInfo) => unknown;
  /** A slice left a block: stop its container. */
  removed: (block: BlockInfo, slice: SliceInfo) => unknown;
}

export type SliceGridEventName = keyof SliceGridEvents;

export interface SliceGridOptions {
  /** Grow with `create` when full (and up to `min` on open), shrink with `destroy` when a block empties. Default false. */
  autosize?: boolean;
  /** Never fewer blocks: autosize creates up to it, destroy and removeBlock stop at it. Default 0. */
  min?: number;
  /** Never more blocks. Default Infinity. */
  max?: number;
  /** Where the grid keeps its state (JSON, written atomically after each change). Default: memory only. */
  file?: string;
  /** MB: the size asked of `create`. Required with autosize. */
  blockSize?: number;
}

/** One step of a compaction: the slice leaves `from` and goes to `to`. */
export interface Move {
  slice: string;
  size: number;
  from: string;
  to: string;
}

/** What `compact()` proposes; apply it with `move()` for each step, in order. */
export interface CompactionPlan {
  moves: Move[];
  /** Blocks left empty once the moves are done (destroyed by autosize when above `min`). */
  empties: string[];
  blocksBefore: number;
  blocksAfter: number;
}

/** The grid file's contents, and `toJSON()`. */
export interface SliceGridJSON {
  version: 1;
  blocks: Array<{
    id: string;
    size: number;
    tags: string[];
    slices: Array<{ id: string; size: number; tags: string[]; group: string | null }>;
  }>;
}
