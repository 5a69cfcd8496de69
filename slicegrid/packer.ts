import { DuplicateIdError } from './errors.js';
import { FreeIndex, type FreeIndexed } from './free-index.js';
import type { BlockInfo, NormalBlock, NormalSlice, SliceGridJSON, SliceInfo } from './types.js';

export interface BlockState {
  readonly id: string;
  readonly size: number;
  readonly tags: readonly string[];
  used: number;
  free: number;
  /** Unordered (removal swaps the last one in); each slice knows its `pos` here. */
  readonly slices: SliceState[];
  /** How many slices of each group the block holds. */
  readonly groups: Map<string, number>;
  readonly partition: Partition;
  /** When it joined the grid: blocks are listed in this order, and the oldest wins a tie. */
  readonly seq: number;
  /** Its entry in its partition's free index. */
  readonly entry: IndexEntry;
}

/**
 * A block's entry in the free index. The index is brought up to date lazily: placing and
 * unplacing change the block's `free` and queue it, and the next `find` files each queued
 * block under its free space if that changed. A slice planned, taken back and placed again
 * (plan, then apply) leaves its block where the plan filed it: one index update, not three.
 */
interface IndexEntry extends FreeIndexed {
  /** The free space it is filed under (the block's, once refiled). */
  free: number;
  readonly seq: number;
  block: BlockState;
  /** In the queue of blocks to refile. */
  queued: boolean;
  /** In the index (not for a block taken out of the grid). */
  indexed: boolean;
}

export interface SliceState extends NormalSlice {
  block: BlockState | undefined;
  /** Index in its block's `slices`. */
  pos: number;
}

/** The list of slices of every placeholder: a plan only reserves room on them (frozen: nothing goes on it). */
const NO_SLICES: SliceState[] = Object.freeze([]) as unknown as SliceState[];

/** The blocks that share one set of tags. */
interface Partition {
  readonly tags: ReadonlySet<string>;
  readonly index: FreeIndex<IndexEntry>;
}

/**
 * The allocation itself, in memory, with no events and no I/O: blocks, the slices on them,
 * and the placement rule. SliceGrid drives it; compaction plans on a copy of it.
 */
export class Packer {
  private readonly blockMap = new Map<string, BlockState>();
  private readonly sliceMap = new Map<string, SliceState>();
  private readonly partitions = new Map<string, Partition>();
  /** For each slice tag key, the partitions it may use, least specialised first. */
  private eligible = new Map<string, Partition[]>();
  private nextSeq = 0;
  /** The last lookup in `eligible`: nearly every slice has the same tags as the one before. */
  private lastTagKey: string | undefined;
  private lastEligible: Partition[] = [];
  /** Placeholder blocks of a plan being made (see `addDraft`). */
  private drafts = 0;
  /** Blocks whose free space changed since the index last filed them: the first `staleCount` of `stale`. */
  private readonly stale: BlockState[] = [];
  private staleCount = 0;

  /** The blocks, counting the placeholders of a plan being made. */
  get blockCount(): number {
    return this.blockMap.size + this.drafts;
  }

  get sliceCount(): number {
    return this.sliceMap.size;
  }

  block(id: string): BlockState | undefined {
    return this.blockMap.get(id);
  }

  /** A slice by id: placed, or registered by a call still placing it. */
  slice(id: string): SliceState | undefined {
    return this.sliceMap.get(id);
  }

  blocks(): IterableIterator<BlockState> {
    return this.blockMap.values();
  }

  slices(): IterableIterator<SliceState> {
    return this.sliceMap.values();
  }

  addBlock(spec: NormalBlock): BlockState {
    if (this.blockMap.has(spec.id)) throw new DuplicateIdError(`the grid already has a block "${spec.id}"`);
    const block = this.makeBlock(spec);
    this.blockMap.set(block.id, block);
    return block;
  }

  /**
   * A placeholder for a block a plan would create: slices can be placed on it (it is in the
   * free index) and it counts in `blockCount`, but it is not listed and has no id to find it
   * by. (Not in the id map on purpose: adding and deleting the same key there over and over
   * leaves deleted entries in its hash chain, which slows every lookup of it.)
   */
  addDraft(spec: NormalBlock): BlockState {
    this.drafts++;
    return this.makeBlock(spec, NO_SLICES);
  }

  /** Takes a placeholder out again, whole (what was reserved on it goes with it). */
  dropDraft(block: BlockState): void {
    this.unindex(block);
    this.drafts--;
  }

  /**
   * Makes a dropped placeholder the block it stood for, when that block is as planned (its
   * size and tags): the placeholder's object is the block from now on, listed, empty, and
   * filed in the index. Its `seq` orders it as the new block it is (after every block that
   * was there when it was planned, and in the order the plan made them).
   */
  adoptDraft(draft: BlockState, spec: NormalBlock): BlockState {
    if (draft.entry.indexed || draft.size !== spec.size || this.partitions.get(spec.tagKey) !== draft.partition) {
      throw new Error(`packer: placeholder ${draft.id} cannot be block ${spec.id}`);
    }
    if (this.blockMap.has(spec.id)) throw new DuplicateIdError(`the grid already has a block "${spec.id}"`);
    const block = draft as { -readonly [K in keyof BlockState]: BlockState[K] };
    block.id = spec.id;
    block.tags = spec.tags;
    block.used = 0;
    block.free = spec.size;
    block.slices = [];
    block.groups.clear();
    block.entry.free = spec.size;
    block.entry.indexed = true;
    block.partition.index.insert(block.entry);
    this.blockMap.set(block.id, draft);
    return draft;
  }

  /** The `seq` the next block will get: blocks made from now on have this or more. */
  get seqMark(): number {
    return this.nextSeq;
  }

  private makeBlock(spec: NormalBlock, slices: SliceState[] = []): BlockState {
    let partition = this.partitions.get(spec.tagKey);
    if (partition === undefined) {
      partition = { tags: new Set(spec.tags), index: new FreeIndex() };
      this.partitions.set(spec.tagKey, partition);
      this.eligible = new Map();
      this.lastTagKey = undefined;
    }
    const seq = this.nextSeq++;
    const entry: IndexEntry = { free: spec.size, seq, block: undefined as unknown as BlockState, queued: false, indexed: true };
    const block: BlockState = {
      id: spec.id,
      size: spec.size,
      tags: spec.tags,
      used: 0,
      free: spec.size,
      slices,
      groups: new Map(),
      partition,
      seq,
      entry,
    };
    entry.block = block;
    partition.index.insert(entry);
    return block;
  }

  /** Puts back an empty block that removeBlock took out (a destroy that was refused). */
  reinsert(block: BlockState): void {
    if (block.slices.length > 0 || this.blockMap.has(block.id)) throw new Error(`packer: cannot reinsert block ${block.id}`);
    block.entry.free = block.free;
    block.entry.indexed = true;
    block.partition.index.insert(block.entry);
    this.blockMap.set(block.id, block);
    // Back in its old place in the listing, so that a refused destroy leaves no trace.
    const ordered = [...this.blockMap.values()].sort((a, b) => a.seq - b.seq);
    this.blockMap.clear();
    for (const b of ordered) this.blockMap.set(b.id, b);
  }

  /** Takes an empty block out. */
  removeBlock(block: BlockState): void {
    if (block.slices.length > 0) throw new Error(`packer: block ${block.id} still holds slices`);
    this.unindex(block);
    this.blockMap.delete(block.id);
  }

  /** Whether the slice may go on the block at all: tags and room. */
  fits(slice: NormalSlice, block: BlockState): boolean {
    if (block.free < slice.size) return false;
    const tags = slice.tags;
    for (let i = 0; i < tags.length; i++) if (!block.partition.tags.has(tags[i]!)) return false;
    return true;
  }

  /**
   * Where the slice goes: among blocks with the slice's tags and room, prefer one without a
   * replica of the slice's group, then one with the fewest tags the slice did not ask for
   * (so router blocks stay free for routers), then the one it fills tightest (best fit).
   * `avoid`: blocks not to use (being emptied). Undefined when nothing has room.
   */
  find(slice: NormalSlice, avoid?: ReadonlySet<BlockState>): BlockState | undefined {
    if (this.staleCount > 0) this.refile();
    const partitions = this.partitionsFor(slice.tagKey, slice.tags);
    const group = slice.group;
    if (group === null && avoid === undefined && partitions.length === 1) {
      return partitions[0]!.index.bestFit(slice.size)?.block;
    }
    if (group !== null) {
      const spread = search(partitions, slice.size, (e) => !e.block.groups.has(group) && !(avoid?.has(e.block) ?? false));
      if (spread !== undefined) return spread;
    }
    return search(partitions, slice.size, avoid === undefined ? undefined : (e) => !avoid.has(e.block));
  }

  /** Claims the slice's id; a slice is registered before it is placed and after it leaves. */
  register(slice: SliceState): void {
    const there = this.sliceMap.get(slice.id);
    if (there !== undefined) {
      const where = there.block === undefined ? 'being placed' : `on block "${there.block.id}"`;
      throw new DuplicateIdError(`slice "${slice.id}" is in the grid already (${where}): remove it first or use another id`);
    }
    this.sliceMap.set(slice.id, slice);
  }

  unregister(slice: SliceState): void {
    if (slice.block !== undefined) throw new Error(`packer: slice ${slice.id} is still placed`);
    if (this.sliceMap.get(slice.id) === slice) this.sliceMap.delete(slice.id);
  }

  /** Puts a registered slice on a block; the caller has checked that it fits. */
  place(slice: SliceState, block: BlockState): void {
    if (block.free < slice.size || slice.block !== undefined) throw new Error(`packer: slice ${slice.id} cannot go on block ${block.id}`);
    block.free -= slice.size;
    this.touch(block);
    block.used += slice.size;
    slice.pos = block.slices.length;
    block.slices.push(slice);
    if (slice.group !== null) block.groups.set(slice.group, (block.groups.get(slice.group) ?? 0) + 1);
    slice.block = block;
  }

  /**
   * Counts a slice against a block's room and replica groups without putting it on the
   * block: all that `find` looks at. A plan reserves as it goes, so that each placement sees
   * the ones before it, and releases before it returns; the slice itself, the block's list
   * of slices and everything the grid shows stay as they were.
   */
  reserve(slice: NormalSlice, block: BlockState): void {
    if (block.free < slice.size) throw new Error(`packer: no room for slice ${slice.id} on block ${block.id}`);
    block.free -= slice.size;
    block.used += slice.size;
    this.touch(block);
    if (slice.group !== null) block.groups.set(slice.group, (block.groups.get(slice.group) ?? 0) + 1);
  }

  /** Gives back what `reserve` took. */
  release(slice: NormalSlice, block: BlockState): void {
    block.free += slice.size;
    block.used -= slice.size;
    this.touch(block);
    if (slice.group !== null) {
      const n = block.groups.get(slice.group)! - 1;
      if (n === 0) block.groups.delete(slice.group);
      else block.groups.set(slice.group, n);
    }
  }

  /** Takes a placed slice off its block; returns the block. */
  unplace(slice: SliceState): BlockState {
    const block = slice.block;
    if (block === undefined) throw new Error(`packer: slice ${slice.id} is not placed`);
    block.free += slice.size;
    this.touch(block);
    block.used -= slice.size;
    const last = block.slices.pop()!;
    if (last !== slice) {
      block.slices[slice.pos] = last;
      last.pos = slice.pos;
    }
    slice.pos = -1;
    if (slice.group !== null) {
      const n = block.groups.get(slice.group)! - 1;
      if (n === 0) block.groups.delete(slice.group);
      else block.groups.set(slice.group, n);
    }
    slice.block = undefined;
    return block;
  }

  toJSON(): SliceGridJSON {
    const blocks: SliceGridJSON['blocks'] = [];
    for (const block of this.blockMap.values()) {
      const slices = [];
      for (const s of sortedSlices(block)) slices.push({ id: s.id, size: s.size, tags: [...s.tags], group: s.group });
      blocks.push({ id: block.id, size: block.size, tags: [...block.tags], slices });
    }
    return { version: 1, blocks };
  }

  /** Queues a block whose free space changed, to be refiled before the next `find`. */
  private touch(block: BlockState): void {
    const entry = block.entry;
    if (entry.queued) return;
    entry.queued = true;
    this.stale[this.staleCount++] = block;
  }

  /** Files the queued blocks under their free space now. */
  private refile(): void {
    const stale = this.stale;
    for (let i = 0; i < this.staleCount; i++) {
      const block = stale[i]!;
      const entry = block.entry;
      entry.queued = false;
      if (entry.indexed && entry.free !== block.free) block.partition.index.update(entry, block.free);
    }
    this.staleCount = 0;
  }

  private unindex(block: BlockState): void {
    const entry = block.entry;
    if (entry.indexed) block.partition.index.delete(entry);
    entry.indexed = false;
  }

  private partitionsFor(tagKey: string, tags: readonly string[]): Partition[] {
    if (tagKey === this.lastTagKey) return this.lastEligible;
    let list = this.eligible.get(tagKey);
    if (list === undefined) {
      list = [...this.partitions.entries()]
        .filter(([, p]) => tags.every((tag) => p.tags.has(tag)))
        .sort(([ka, a], [kb, b]) => a.tags.size - b.tags.size || (ka < kb ? -1 : ka > kb ? 1 : 0))
        .map(([, p]) => p);
      this.eligible.set(tagKey, list);
    }
    this.lastTagKey = tagKey;
    this.lastEligible = list;
    return list;
  }
}

/** Best fit over partitions ordered by specialisation: the first tier with a fit wins. */
function search(
  partitions: readonly Partition[],
  size: number,
  accept: ((entry: IndexEntry) => boolean) | undefined,
): BlockState | undefined {
  let best: IndexEntry | undefined;
  let tier = -1;
  for (const p of partitions) {
    if (best !== undefined && p.tags.size !== tier) break;
    const candidate = p.index.bestFit(size, accept);
    if (candidate !== undefined && (best === undefined || candidate.free < best.free)) {
      best = candidate;
      tier = p.tags.size;
    }
  }
  return best?.block;
}

export function blockInfo(block: BlockState): BlockInfo {
  return {
    id: block.id,
    size: block.size,
    used: block.used,
    free: block.free,
    tags: block.tags,
    slices: sortedSlices(block).map((s) => s.id),
  };
}

/** A block's slices by id: a listing that does not depend on the order things happened in. */
export function sortedSlices(block: BlockState): SliceState[] {
  return [...block.slices].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function sliceInfo(slice: NormalSlice, block: string): SliceInfo {
  return { id: slice.id, size: slice.size, tags: slice.tags, group: slice.group, block };
}
