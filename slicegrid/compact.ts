import type { BlockState, Packer, SliceState } from './packer.js';
import type { CompactionPlan, Move } from './types.js';

/**
 * Plans which slices to move so that blocks empty out, on a copy of the allocation (the
 * grid itself does not change): the least used blocks are tried first, and a block is
 * only emptied if every one of its slices finds room elsewhere under the usual rules (tags,
 * replicas spread, best fit), never on a block that is itself being emptied. At most
 * `blocks - min` blocks are emptied. Every move goes from a block that empties to one that
 * stays, so the moves may be applied in any order without running out of room.
 */
export function planCompaction(copy: Packer, min: number): CompactionPlan {
  const blocksBefore = copy.blockCount;
  const limit = Math.max(0, blocksBefore - min);
  const candidates = [...copy.blocks()].sort((a, b) => a.used - b.used || b.size - a.size);
  const emptied = new Set<BlockState>();
  const moves = new Map<string, Move>();

  for (const block of candidates) {
    if (emptied.size >= limit) break;
    emptied.add(block);
    const slices = [...block.slices].sort((a, b) => b.size - a.size);
    const done: Array<{ slice: SliceState; to: BlockState }> = [];
    for (const slice of slices) {
      const to = copy.find(slice, emptied);
      if (to === undefined) break;
      copy.unplace(slice);
      copy.place(slice, to);
      done.push({ slice, to });
    }
    if (done.length < slices.length) {
      // This block cannot be emptied: put its slices back and try the next one.
      for (const { slice } of done.reverse()) {
        copy.unplace(slice);
        copy.place(slice, block);
      }
      emptied.delete(block);
      continue;
    }
    for (const { slice, to } of done) {
      const earlier = moves.get(slice.id);
      if (earlier !== undefined) earlier.to = to.id;
      else moves.set(slice.id, { slice: slice.id, size: slice.size, from: block.id, to: to.id });
    }
  }

  return {
    moves: [...moves.values()],
    empties: [...emptied].map((b) => b.id),
    blocksBefore,
    blocksAfter: blocksBefore - emptied.size,
  };
}
