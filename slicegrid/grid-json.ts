import { InvalidSliceGridArgumentError, SliceGridError, SliceGridFileError } from './errors.js';
import { Packer } from './packer.js';
import type { PlanState, SliceGridJSON } from './types.js';
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
  try {
    return build(json.blocks!, true, fail);
  } catch (error) {
    if (error instanceof SliceGridFileError) throw error;
    if (error instanceof SliceGridError) fail(error.message);
    throw error;
  }
}

/** The allocation a plan starts from, checked the same way; `slices` may be left out. */
export function packerFromState(state: PlanState): Packer {
  const fail = (why: string): never => {
    throw new InvalidSliceGridArgumentError(`the state to plan from is not a grid: ${why}`);
  };
  if (state === null || typeof state !== 'object' || !Array.isArray(state.blocks)) fail('expected { blocks: [...] }');
  return build(state.blocks, false, fail);
}

function build(
  blocks: ReadonlyArray<{ slices?: unknown }>,
  slicesRequired: boolean,
  fail: (why: string) => never,
): Packer {
  const packer = new Packer();
  for (const [i, raw] of blocks.entries()) {
    const block = packer.addBlock(normalizeBlock(raw as SliceGridJSON['blocks'][number], 'block'));
    const slices = raw.slices ?? (slicesRequired ? undefined : []);
    if (!Array.isArray(slices)) fail(`block ${i + 1} ("${block.id}"): "slices" must be a list`);
    for (const rawSlice of slices as unknown[]) {
      const slice = normalizeSlice(rawSlice as SliceGridJSON['blocks'][number]['slices'][number]);
      if (packer.slice(slice.id) !== undefined) fail(`slice "${slice.id}" is on two blocks`);
      packer.register(slice);
      if (!packer.fits(slice, block)) {
        fail(`slice "${slice.id}" (${slice.size} MB, tags [${slice.tags.join(', ')}]) does not fit on block "${block.id}"`);
      }
      packer.place(slice, block);
    }
  }
  return packer;
}
