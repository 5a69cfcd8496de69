import { SliceGridError, SliceGridFileError } from './errors.js';
import { Packer } from './packer.js';
import type { SliceGridJSON } from './types.js';
import { normalizeBlock, normalizeSlice } from './validate.js';

/**
 * Rebuilds the allocation that `toJSON()` wrote, checking it as it goes: a file someone
 * edited by hand into an impossible grid (a block over capacity, a slice twice, a slice
 * on a block without its tags) is refused with the reason, never half-loaded.
 */
export function packerFromJSON(value: unknown, source: string): Packer {
  const fail = (why: string): never => {
    throw new SliceGridFileError(`${source} is not a slicegrid file: ${why}`);
  };
  if (value === null || typeof value !== 'object') fail('expected a JSON object');
  const json = value as Partial<SliceGridJSON>;
  if (json.version !== 1) fail(`unknown version ${JSON.stringify(json.version)} (this quarry reads version 1)`);
  if (!Array.isArray(json.blocks)) fail('"blocks" must be a list');
  const packer = new Packer();
  try {
    for (const [i, raw] of json.blocks!.entries()) {
      const block = packer.addBlock(normalizeBlock(raw, 'block'));
      if (!Array.isArray(raw.slices)) fail(`block ${i + 1} ("${block.id}"): "slices" must be a list`);
      for (const rawSlice of raw.slices) {
        const slice = normalizeSlice(rawSlice);
        if (packer.slice(slice.id) !== undefined) fail(`slice "${slice.id}" is on two blocks`);
        packer.register(slice);
        if (!packer.fits(slice, block)) {
          fail(`slice "${slice.id}" (${slice.size} MB, tags [${slice.tags.join(', ')}]) does not fit on block "${block.id}"`);
        }
        packer.place(slice, block);
      }
    }
  } catch (error) {
    if (error instanceof SliceGridFileError) throw error;
    if (error instanceof SliceGridError) fail(error.message);
    throw error;
  }
  return packer;
}
