import { DuplicateIdError } from './errors.js';
import { FreeIndex, type FreeIndexed } from './free-index.js';
import type { NormalBlock, NormalSlice } from './validate.js';
import type { BlockInfo, SliceGridJSON, SliceInfo } from './types.js';

export interface BlockState extends FreeIndexed {
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
}

export interface SliceState extends NormalSlice {
  block: BlockState | undefined;
  /** Index in its block's `slices`. */
  pos: number;
}

/** The blocks that share one set of tags. */
interface Partition {
  readonly tags: ReadonlySet<string>;
  readonly index: FreeIndex<BlockState>;
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

  get blockCount(): number {
    return this.blockMap.size;
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
    let partition = this.partitions.get(spec.tagKey);
    if (partition === undefined) {
      partition = { tags: new Set(spec.tags), index: new FreeIndex() };
      this.partitions.set(spec.tagKey, partition);
      this.eligible = new Map();
      this.lastTagKey = undefined;
    }
    const block: BlockState = {
      id: spec.id,
      size: spec.size,
      tags: spec.tags,
      used: 0,
      free: spec.size,
      slices: [],
      groups: new Map(),
      partition,
      seq: this.nextSeq++,
    };
    partition.index.insert(block);
    this.blockMap.set(block.id, block);
    return block;
  }

  /** Puts back an empty block that removeBlock took out (a destroy that was refused). */
  reinsert(block: BlockState): void {
    if (block.slices.length > 0 || this.blockMap.has(block.id)) throw new Error(`packer: cannot reinsert block ${block.id}`);
    block.partition.index.insert(block);
    this.blockMap.set(block.id, block);
    // Back in its old place in the listing, so that a refused destroy leaves no trace.
    const ordered = [...this.blockMap.values()].sort((a, b) => a.seq - b.seq);
    this.blockMap.clear();
    for (const b of ordered) this.blockMap.set(b.id, b);
  }

  /** Takes an empty block out. */
  removeBlock(block: BlockState): void {
    if (block.slices.length > 0) throw new Error(`packer: block ${block.id} still holds slices`);
    block.partition.index.delete(block);
    this.blockMap.delete(block.id);
  }

  /** Whether the slice may go on the block at all: tags and room. */
  fits(slice: NormalSlice, block: BlockState): boolean {
    return block.free >= slice.size && slice.tags.every((tag) => block.partition.tags.has(tag));
  }

  /**
   * Where the slice goes: among blocks with the slice's tags and room, prefer one without a
   * replica of the slice's group, then one with the fewest tags the slice did not ask for
   * (so router blocks stay free for routers), then the one it fills tightest (best fit).
   * `avoid`: blocks not to use (being emptied). Undefined when nothing has room.
   */
  find(slice: NormalSlice, avoid?: ReadonlySet<BlockState>): BlockState | undefined {
    const partitions = this.partitionsFor(slice.tagKey, slice.tags);
    const group = slice.group;
    if (group === null && avoid === undefined && partitions.length === 1) {
      return partitions[0]!.index.bestFit(slice.size);
    }
    if (group !== null) {
      const spread = search(partitions, slice.size, (b) => !b.groups.has(group) && !(avoid?.has(b) ?? false));
      if (spread !== undefined) return spread;
    }
    return search(partitions, slice.size, avoid === undefined ? undefined : (b) => !avoid.has(b));
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
    block.partition.index.update(block, block.free - slice.size);
    block.used += slice.size;
    slice.pos = block.slices.length;
    block.slices.push(slice);
    if (slice.group !== null) block.groups.set(slice.group, (block.groups.get(slice.group) ?? 0) + 1);
    slice.block = block;
  }

  /** Takes a placed slice off its block; returns the block. */
  unplace(slice: SliceState): BlockState {
    const block = slice.block;
    if (block === undefined) throw new Error(`packer: slice ${slice.id} is not placed`);
    block.partition.index.update(block, block.free + slice.size);
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
  accept: ((block: BlockState) => boolean) | undefined,
): BlockState | undefined {
  let best: BlockState | undefined;
  let tier = -1;
  for (const p of partitions) {
    if (best !== undefined && p.tags.size !== tier) break;
    const candidate = p.index.bestFit(size, accept);
    if (candidate !== undefined && (best === undefined || candidate.free < best.free)) {
      best = candidate;
      tier = p.tags.size;
    }
  }
  return best;
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
