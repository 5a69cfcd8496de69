import {
  DuplicateIdError,
  InvalidSliceGridArgumentError,
  SliceGridError,
  SliceGridFullError,
  SliceGridLimitError,
  SliceTooLargeError,
  UnknownBlockError,
  UnknownSliceError,
} from './errors.js';
import { packerFromState } from './grid-json.js';
import type { BlockState, Packer, SliceState } from './packer.js';
import type { GridPlan, Limits, NormalBlock, Placement, PlannedBlock, PlanPolicy, PlanRequest, PlanResult, PlanState, Removal } from './types.js';
import { checkLimits, normalizeBlock, normalizeSlice } from './validate.js';

/**
 * The planner: from the grid's state and a change, what the change does (which slices go
 * on which blocks, which blocks to create and which to destroy), or the typed error it
 * fails with, before anything happens. No I/O, no events, no awaits: the applier carries
 * a plan out; `rehearse()` shows one; the tests give a state and read the plan.
 *
 * It plans on the allocation itself (a copy would cost a pass over every block for each
 * call), synchronously: as it goes, it reserves each slice's room on the block it picks
 * (and adds placeholder blocks to the free index), so that each placement sees the ones
 * before it, and it gives all of that back before it returns. Slices are never put on
 * blocks, so the blocks, their slices and everything the grid shows are exactly as they were.
 */

/** A change with its arguments checked: what SliceGrid hands the planner. */
export type NormalRequest =
  | Exclude<PlanRequest, { kind: 'add' } | { kind: 'add-block' }>
  | { kind: 'add'; slices: readonly SliceState[] }
  | { kind: 'add-block'; block: NormalBlock };

/** Plans a change on a state given as data; for tools and tests. The grid itself uses `planOn`. */
export function planChange(state: PlanState, request: PlanRequest, policy: PlanPolicy = {}): PlanResult {
  const limits = checkLimits(policy);
  const packer = packerFromState(state);
  try {
    return { ok: true, plan: toPlan(planOn(packer, normalizeRequest(request), limits)) };
  } catch (error) {
    if (error instanceof SliceGridError) return { ok: false, error };
    throw error;
  }
}

/** Checks a change's arguments (ids, sizes, tags), as the calls of SliceGrid do. */
export function normalizeRequest(request: PlanRequest): NormalRequest {
  if (request === null || typeof request !== 'object') throw new InvalidSliceGridArgumentError(`a plan request must be an object { kind, … }`);
  switch (request.kind) {
    case 'add':
      if (!Array.isArray(request.slices)) throw new InvalidSliceGridArgumentError('add takes a list of { id, size, tags?, group? }');
      return { kind: 'add', slices: request.slices.map((s) => normalizeSlice(s)) };
    case 'add-block':
      return { kind: 'add-block', block: normalizeBlock(request.block) };
    case 'remove':
      if (!Array.isArray(request.slices) || !request.slices.every((id) => typeof id === 'string')) {
        throw new InvalidSliceGridArgumentError('remove takes a list of slice ids');
      }
      return request;
    case 'move':
      if (typeof request.slice !== 'string' || typeof request.to !== 'string') throw new InvalidSliceGridArgumentError('move takes { slice, to }');
      return request;
    case 'remove-block':
      if (typeof request.block !== 'string') throw new InvalidSliceGridArgumentError('remove-block takes { block }');
      return request;
    case 'fill':
    case 'shrink':
      return request;
    default:
      throw new InvalidSliceGridArgumentError(`no such change: ${JSON.stringify((request as { kind?: unknown }).kind)}`);
  }
}

/** A block the plan creates, as the applier needs it (`PlannedBlock` without its list of slices). */
export type NewBlock = Omit<PlannedBlock, 'slices'>;

/**
 * A plan as the planner hands it to the applier: `GridPlan`'s content, with the placements
 * as parallel lists of the slices and blocks themselves (no ids to look up again, no object
 * per placement), in order. `toPlan` gives the `GridPlan`.
 */
export interface Drafted {
  /** The placements: each slice, in order… */
  readonly slices: readonly SliceState[];
  /** …the block it goes on: an existing block, or the placeholder of `newBlocks[seq - draftSeq]`… */
  readonly targets: readonly BlockState[];
  /** …and, when the placements are moves (`move`, `remove-block`), the block it leaves; empty otherwise. */
  readonly froms: readonly BlockState[];
  /** Placeholders are the blocks with a `seq` this high or higher, numbered in the order of `newBlocks`. */
  readonly draftSeq: number;
  /** The blocks to create, in order, and the placeholder of each (dropped; the applier may adopt it as the block). */
  readonly newBlocks: readonly NewBlock[];
  readonly drafts: readonly BlockState[];
  readonly removals: readonly Removal[];
  readonly addBlock: GridPlan['addBlock'];
  readonly removeBlock: string | undefined;
  readonly destroys: readonly string[];
}

/**
 * Plans a change on the grid's allocation, which it leaves as it was. Throws the typed
 * error the change fails with: `SliceGridFullError`, `SliceTooLargeError`,
 * `SliceGridLimitError`, `DuplicateIdError`, `UnknownSliceError`, `UnknownBlockError`, or
 * `InvalidSliceGridArgumentError` (a `move` to a block without the slice's tags).
 * `claimed`: the slices of an `add` hold their ids already (SliceGrid claims a batch's ids,
 * which checks them, before planning it).
 */
export function planOn(packer: Packer, request: NormalRequest, limits: Limits, claimed = false): Drafted {
  const draft = new Draft(packer, limits);
  try {
    draft.fill();
    switch (request.kind) {
      case 'fill':
        break;
      case 'add':
        draft.add(request.slices, claimed);
        break;
      case 'remove':
        draft.remove(request.slices);
        break;
      case 'move':
        draft.move(request.slice, request.to);
        break;
      case 'add-block':
        draft.planAddBlock(request.block);
        break;
      case 'remove-block':
        draft.planRemoveBlock(request.block);
        break;
      case 'shrink':
        draft.shrink();
        break;
    }
    return draft;
  } finally {
    draft.takeBack();
  }
}

/**
 * Plans where slices go, in the order given (largest first already), on the allocation as
 * it is now: the applier's plan again for the rest of a batch when a block it was given
 * differs from the one planned. Slices may be unplaced (being added) or placed (moving
 * off a block in `avoid`).
 */
export function planPlacements(packer: Packer, slices: readonly SliceState[], avoid: ReadonlySet<BlockState> | undefined, limits: Limits): Drafted {
  const draft = new Draft(packer, limits);
  try {
    draft.place(slices, avoid);
    return draft;
  } finally {
    draft.takeBack();
  }
}

/** The plan in words: ids and placeholders. */
export function toPlan(drafted: Drafted): GridPlan {
  const { slices, targets, froms, draftSeq } = drafted;
  const newBlocks: PlannedBlock[] = drafted.newBlocks.map((b) => ({ ...b, slices: [] }));
  const placements: Placement[] = [];
  for (let i = 0; i < slices.length; i++) {
    const slice = slices[i]!;
    const target = targets[i]!;
    const from = froms[i];
    const newBlock = target.seq >= draftSeq ? newBlocks[target.seq - draftSeq]! : undefined;
    newBlock?.slices.push(slice.id);
    const block = newBlock?.ref ?? target.id;
    placements.push(from === undefined ? { slice: slice.id, size: slice.size, block } : { slice: slice.id, size: slice.size, block, from: from.id });
  }
  return {
    newBlocks,
    placements,
    removals: [...drafted.removals],
    ...(drafted.addBlock === undefined ? {} : { addBlock: drafted.addBlock }),
    ...(drafted.removeBlock === undefined ? {} : { removeBlock: drafted.removeBlock }),
    destroys: [...drafted.destroys],
  };
}

/** Larger first; `sort` is stable, so equal sizes keep the order asked. */
export function largestFirst(a: { size: number }, b: { size: number }): number {
  return b.size - a.size;
}

/** The lists a plan mostly leaves empty share this one until they get something (it is frozen: nothing is pushed onto it). */
const NONE: never[] = Object.freeze([]) as never[];

/**
 * One plan being made, on the allocation: what the plan says so far, and what it put on
 * the allocation, to take back.
 */
class Draft implements Drafted {
  slices: SliceState[] = NONE;
  /** Whether the targets hold reservations to give back (`move` reserves nothing). */
  private reserved = false;
  targets: BlockState[] = NONE;
  froms: BlockState[] = NONE;
  readonly draftSeq: number;
  newBlocks: NewBlock[] = NONE;
  removals: Removal[] = NONE;
  addBlock: GridPlan['addBlock'] = undefined;
  removeBlock: string | undefined = undefined;
  destroys: string[] = NONE;
  /** The placeholders, in the order of `newBlocks`. */
  drafts: BlockState[] = NONE;

  constructor(
    private readonly packer: Packer,
    private readonly limits: Limits,
  ) {
    this.draftSeq = packer.seqMark;
  }

  /** With autosize (and a way to create), the blocks that bring the grid up to `min`. */
  fill(): void {
    const { autosize, canCreate, min } = this.limits;
    if (!autosize || !canCreate) return;
    while (this.packer.blockCount < min) this.newBlock(undefined);
  }

  add(slices: readonly SliceState[], claimed: boolean): void {
    // Every id is free, and given once.
    if (!claimed) {
      const batch = new Set<string>();
      for (const slice of slices) {
        const there = this.packer.slice(slice.id);
        if (there !== undefined || batch.has(slice.id)) {
          const where = there?.block === undefined ? 'being placed' : `on block "${there.block.id}"`;
          throw new DuplicateIdError(`slice "${slice.id}" is in the grid already (${where}): remove it first or use another id`);
        }
        batch.add(slice.id);
      }
    }
    // Largest first packs tighter.
    this.place(slices.length > 1 ? [...slices].sort(largestFirst) : slices, undefined);
  }

  remove(ids: readonly string[]): void {
    const left = new Map<BlockState, number>();
    const emptied: BlockState[] = [];
    const gone = new Set<string>();
    this.removals = [];
    for (const id of ids) {
      const slice = this.packer.slice(id);
      const block = slice?.block;
      // A slice named twice is not in the grid any more the second time.
      if (slice === undefined || block === undefined || gone.has(id)) throw new UnknownSliceError(id);
      gone.add(id);
      this.removals.push({ slice: id, size: slice.size, block: block.id });
      const n = (left.get(block) ?? block.slices.length) - 1;
      left.set(block, n);
      if (n === 0) emptied.push(block);
    }
    this.destroyEmptied(emptied);
  }

  move(id: string, to: string): void {
    const slice = this.packer.slice(id);
    if (slice?.block === undefined) throw new UnknownSliceError(id);
    const target = this.packer.block(to);
    if (target === undefined) throw new UnknownBlockError(to);
    const from = slice.block;
    if (from === target) return;
    const missing = slice.tags.filter((tag) => !target.tags.includes(tag));
    if (missing.length > 0) {
      throw new InvalidSliceGridArgumentError(`slice "${id}" needs tags [${slice.tags.join(', ')}] and block "${to}" lacks [${missing.join(', ')}]`);
    }
    if (target.free < slice.size) {
      throw new SliceGridFullError(`block "${to}" has ${target.free} MB free and slice "${id}" needs ${slice.size} MB`);
    }
    this.slices = [slice];
    this.froms = [from];
    this.targets = [target];
    if (from.slices.length === 1) this.destroyEmptied([from]);
  }

  planAddBlock(spec: NormalBlock): void {
    if (this.packer.block(spec.id) !== undefined) throw new DuplicateIdError(`the grid already has a block "${spec.id}"`);
    if (this.packer.blockCount >= this.limits.max) {
      throw new SliceGridLimitError(`the grid has its max of ${this.limits.max} blocks: raise max or remove a block before adding "${spec.id}"`);
    }
    this.addBlock = { id: spec.id, size: spec.size, tags: spec.tags };
  }

  /** Its slices move to other blocks first, largest first; the block then leaves (no destroy). */
  planRemoveBlock(id: string): void {
    const block = this.packer.block(id);
    if (block === undefined) throw new UnknownBlockError(id);
    if (this.packer.blockCount <= this.limits.min) {
      throw new SliceGridLimitError(
        `the grid has ${this.packer.blockCount} block(s) and its min is ${this.limits.min}: add a block before removing "${id}"`,
      );
    }
    this.place([...block.slices].sort(largestFirst), new Set([block]));
    this.removeBlock = id;
  }

  /** With autosize, the empty blocks above `min`, newest first. */
  shrink(): void {
    if (!this.limits.autosize || !this.limits.canDestroy) return;
    const empty = [...this.packer.blocks()].filter((b) => b.slices.length === 0).reverse();
    this.destroyEmptied(empty);
  }

  /**
   * Each slice on the block that `find` picks, or on a new block when none has room. A
   * slice that is placed (moving off a block in `avoid`) stays where it is meanwhile: the
   * block it leaves is not a candidate anyway.
   */
  place(slices: readonly SliceState[], avoid: ReadonlySet<BlockState> | undefined): void {
    const packer = this.packer;
    // Made here, not in a field's initialiser: an array the optimiser sees made is one whose
    // `push` it inlines (a field's array is a call into the runtime per push).
    const targets: BlockState[] = [];
    // The plan's list of slices is this one (nothing changes it afterwards); until every
    // slice is placed, `targets` says how many are.
    this.slices = slices as SliceState[];
    this.targets = targets;
    this.reserved = true;
    for (const slice of slices) {
      const to = packer.find(slice, avoid) ?? this.newBlock(slice);
      const from = slice.block;
      if (from !== undefined) {
        if (this.froms === NONE) this.froms = [];
        this.froms.push(from);
      }
      packer.reserve(slice, to);
      targets.push(to);
    }
  }

  /** Gives back what the plan reserved: the placeholders go whole, then the reservations on existing blocks. */
  takeBack(): void {
    const { packer, slices, targets, draftSeq, drafts } = this;
    // Newest first: each is then the last of its bucket in the free index (ordered by `seq`),
    // so taking it out moves nothing (oldest first, a big batch's full blocks cost a quadratic shuffle).
    for (let i = drafts.length - 1; i >= 0; i--) packer.dropDraft(drafts[i]!);
    if (!this.reserved) return;
    for (let i = targets.length - 1; i >= 0; i--) {
      const target = targets[i]!;
      if (target.seq < draftSeq) packer.release(slices[i]!, target);
    }
  }

  private nameOf(block: BlockState): string {
    return block.seq >= this.draftSeq ? this.newBlocks[block.seq - this.draftSeq]!.ref : block.id;
  }

  /** A placeholder for a block to create: for `slice` (it found no room), or for `min`. */
  private newBlock(slice: SliceState | undefined): BlockState {
    if (slice !== undefined) this.checkGrowth(slice);
    if (this.newBlocks === NONE) {
      this.newBlocks = [];
      this.drafts = [];
    }
    const ref = `new ${this.newBlocks.length + 1}`;
    const size = this.limits.blockSize!;
    const tags = slice?.tags ?? [];
    const block = this.packer.addDraft({ id: ref, size, tags, tagKey: slice?.tagKey ?? '' });
    if (block.seq - this.draftSeq !== this.newBlocks.length) throw new Error('planner: placeholders must be numbered in order');
    this.drafts.push(block);
    this.newBlocks.push(slice === undefined ? { ref, size, tags, reason: 'min' } : { ref, size, tags, reason: 'full', slice: slice.id });
    return block;
  }

  /** With autosize (and a way to destroy), those of these empty blocks that go: never below `min`. */
  private destroyEmptied(blocks: readonly BlockState[]): void {
    const { autosize, canDestroy, min } = this.limits;
    if (!autosize || !canDestroy) return;
    for (const block of blocks) {
      if (this.packer.blockCount - this.destroys.length <= min) break;
      if (this.destroys === NONE) this.destroys = [];
      this.destroys.push(this.nameOf(block));
    }
  }

  /** Throws the error that says why the grid cannot grow for this slice, if it cannot. */
  private checkGrowth(slice: SliceState): void {
    const { autosize, blockSize, max, canCreate } = this.limits;
    if (autosize && slice.size <= blockSize! && this.packer.blockCount < max && canCreate) return;
    const needs = `slice "${slice.id}" (${slice.size} MB${slice.tags.length > 0 ? `, tags ${slice.tags.join(',')}` : ''})`;
    if (!autosize) {
      let largest = 0;
      for (const b of this.packer.blocks()) if (slice.tags.every((t) => b.tags.includes(t))) largest = Math.max(largest, b.size);
      if (largest === 0 && slice.tags.length > 0) {
        throw new SliceGridFullError(`${needs} fits on no block: no block has tags ${slice.tags.join(',')}, and autosize is off: add a block with them`);
      }
      if (largest > 0 && slice.size > largest) {
        throw new SliceTooLargeError(`${needs} is larger than any block (the largest is ${largest} MB): give it less memory or add a bigger block`);
      }
      throw new SliceGridFullError(`${needs} fits on no block and autosize is off: add a block, remove slices, or turn autosize on`);
    }
    if (slice.size > blockSize!) {
      throw new SliceTooLargeError(
        `${needs} fits on no block and is larger than the ${blockSize} MB blocks the grid creates: give it less memory, raise blockSize, or add a bigger block`,
      );
    }
    if (this.packer.blockCount >= max) {
      throw new SliceGridFullError(`${needs} fits on no block and the grid is at its max of ${max} blocks: raise max, remove slices, or compact`);
    }
    if (!canCreate) {
      throw new SliceGridFullError(`${needs} fits on no block and nothing handles 'create': listen for 'create' to make servers`);
    }
  }
}
