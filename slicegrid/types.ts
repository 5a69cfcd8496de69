/** Sizes are whole megabytes throughout, like `memory:` in quarry.yml. */

import type { SliceGridError } from './errors.js';

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

export interface SliceGridOptions<C = unknown> {
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
  /**
   * Where new blocks come from and where empty ones go, called with the context the caller
   * passed to the changing call. Without it, the `create` and `destroy` events are the block
   * source; with it, those events are not emitted (`added` and `removed` still are).
   */
  blocks?: BlockSource<C>;
}

/** What every changing call takes besides its arguments. */
export interface CallOptions<C = unknown> {
  /**
   * Handed to the block source with every `create` and `destroy` this call causes (a
   * progress reporter, say): state of the call, not of the grid.
   */
  context?: C;
}

// --- the block source --------------------------------------------------------------------

/** What the block source is asked to make: a `CreateRequest` and the call's context. */
export interface BlockRequest<C = unknown> extends CreateRequest {
  /** The `context` of the call that needs the block; undefined when it passed none. */
  context: C | undefined;
}

/**
 * Makes and retires the servers behind blocks. `create` resolves with the new block, which
 * must hold what was asked (the slice of a `full` request must fit on it); a rejection fails
 * the call and the grid undoes it. `destroy` is asked only for empty blocks; a rejection
 * keeps the block. The event-handler form (`on('create')`, `on('destroy')`) is one of these.
 */
export interface BlockSource<C = unknown> {
  create(request: BlockRequest<C>): Promise<BlockSpec>;
  destroy(block: BlockInfo, context: C | undefined): Promise<void>;
}

// --- plans -------------------------------------------------------------------------------

/**
 * A change to plan (and then apply): what the changing calls of SliceGrid ask for.
 * `fill` brings the grid up to `min`; every plan does that first when it must.
 */
export type PlanRequest =
  | { kind: 'fill' }
  | { kind: 'add'; slices: readonly SliceRequest[] }
  | { kind: 'remove'; slices: readonly string[] }
  | { kind: 'move'; slice: string; to: string }
  | { kind: 'add-block'; block: BlockSpec }
  | { kind: 'remove-block'; block: string }
  | { kind: 'shrink' };

/** The limits a plan keeps to: the grid's options, and what its block source can do. */
export interface PlanPolicy {
  autosize?: boolean;
  min?: number;
  max?: number;
  blockSize?: number;
  /** Whether new blocks can be asked for at all (a block source, or a `create` listener). Default true. */
  canCreate?: boolean;
  /** Whether empty blocks can be destroyed (a block source, or a `destroy` listener). Default true. */
  canDestroy?: boolean;
}

/** The state a plan starts from: blocks in the order they joined, each with its slices. `toJSON()` is one. */
export interface PlanState {
  blocks: ReadonlyArray<BlockSpec & { slices?: readonly SliceRequest[] }>;
}

/**
 * A block the plan asks the block source for. Until it exists the plan names it by `ref`
 * (`new 1`, `new 2`, …), which has a space in it, so no block id can look like it.
 */
export interface PlannedBlock {
  ref: string;
  /** MB: the grid's `blockSize`. */
  size: number;
  tags: readonly string[];
  /** `min`: the grid has fewer blocks than `min` (made first); `full`: a slice found no room. */
  reason: 'full' | 'min';
  /** Reason `full`: the slice that found no room, the first the plan puts on it. */
  slice?: string;
  /** The slices the plan puts on it, in order. */
  slices: string[];
}

/** A slice going onto a block: an existing block's id, or a planned block's `ref`. */
export interface Placement {
  slice: string;
  size: number;
  block: string;
  /** When the slice moves (`move`, `remove-block`): the block it leaves. */
  from?: string;
}

/** A slice leaving the grid. */
export interface Removal {
  slice: string;
  size: number;
  block: string;
}

/**
 * What a change does, worked out before anything happens, in the order the applier does it:
 * create the `min` blocks; take the removals off; add `addBlock`; make the placements in
 * order (creating each planned block when the first slice goes on it); take `removeBlock`
 * out; destroy `destroys`, last, because a destroy cannot be undone.
 */
export interface GridPlan {
  newBlocks: PlannedBlock[];
  placements: Placement[];
  removals: Removal[];
  addBlock?: { id: string; size: number; tags: readonly string[] };
  removeBlock?: string;
  /** Blocks the change leaves empty that go (autosize on, a way to destroy, never below `min`), in order. */
  destroys: string[];
}

/** A plan, or the typed error the change would fail with before anything happened. */
export type PlanResult = { ok: true; plan: GridPlan } | { ok: false; error: SliceGridError };

// --- shared inside slicegrid (not exported by index.ts) -----------------------------------

/** A checked slice request. */
export interface NormalSlice {
  id: string;
  size: number;
  tags: readonly string[];
  /** The sorted tags joined: slices with equal keys can go on the same blocks. */
  tagKey: string;
  group: string | null;
}

/** A checked block spec. */
export interface NormalBlock {
  id: string;
  size: number;
  tags: readonly string[];
  tagKey: string;
}

/** The grid's options once checked, and what its block source can do: what the planner keeps to. */
export interface Limits {
  readonly autosize: boolean;
  readonly min: number;
  readonly max: number;
  readonly blockSize: number | undefined;
  readonly canCreate: boolean;
  readonly canDestroy: boolean;
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
