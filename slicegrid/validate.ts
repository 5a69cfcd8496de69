import { InvalidSliceGridArgumentError } from './errors.js';
import { sharedGroupOf } from './slice-id.js';
import type { SliceState } from './packer.js';
import type { BlockSpec, Limits, NormalBlock, PlanPolicy, SliceRequest } from './types.js';

/** A checked slice, not yet placed. */
export function normalizeSlice(request: SliceRequest): SliceState {
  if (request === null || typeof request !== 'object') {
    throw new InvalidSliceGridArgumentError(`a slice must be an object { id, size, tags? }, not ${String(request)}`);
  }
  const id = checkId(request.id, 'slice');
  const size = checkSize(request.size, 'slice', id);
  const tags = checkTags(request.tags, 'slice', id);
  let group: string | null;
  if (request.group === undefined) group = sharedGroupOf(id);
  else if (request.group === null) group = null;
  else if (typeof request.group === 'string' && request.group !== '') group = request.group;
  else throw new InvalidSliceGridArgumentError(`slice "${id}": group must be a non-empty string or null`);
  return { id, size, tags, tagKey: tags.length === 0 ? '' : tags.join('\n'), group, block: undefined, pos: -1 };
}

export function normalizeBlock(spec: BlockSpec, what = 'block'): NormalBlock {
  if (spec === null || typeof spec !== 'object') {
    throw new InvalidSliceGridArgumentError(`a ${what} must be an object { id, size, tags? }, not ${String(spec)}`);
  }
  const id = checkId(spec.id, what);
  const size = checkSize(spec.size, what, id);
  const tags = checkTags(spec.tags, what, id);
  return { id, size, tags, tagKey: tags.join('\n') };
}

/**
 * Whole megabytes, at least one. `what` (and `id`) name the thing in the error: `slice "a.1"`
 * (put together only for the error: these checks run for every slice).
 */
export function checkSize(size: unknown, what: string, id?: string): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
    throw new InvalidSliceGridArgumentError(`${named(what, id)}: size must be a whole number of MB above 0, not ${String(size)}`);
  }
  return size;
}

function named(what: string, id: string | undefined): string {
  return id === undefined ? what : `${what} "${id}"`;
}

function checkId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id === '' || /\s/.test(id)) {
    throw new InvalidSliceGridArgumentError(`a ${what} id must be a non-empty string without spaces, not ${JSON.stringify(id)}`);
  }
  return id;
}

const NO_TAGS: readonly string[] = Object.freeze([]);

function checkTags(tags: unknown, what: string, id: string): readonly string[] {
  if (tags === undefined || (Array.isArray(tags) && tags.length === 0)) return NO_TAGS;
  if (!Array.isArray(tags)) throw new InvalidSliceGridArgumentError(`${named(what, id)}: tags must be a list of names`);
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag === '' || /[\s,]/.test(tag)) {
      throw new InvalidSliceGridArgumentError(`${named(what, id)}: a tag must be a name without spaces or commas, not ${JSON.stringify(tag)}`);
    }
  }
  // Frozen: the grid hands the same array out in every SliceInfo and BlockInfo.
  return Object.freeze([...new Set(tags as string[])].sort());
}

/**
 * The grid's limits checked (the constructor's options, or a policy to plan with), with
 * what its block source can do: by default it can create and destroy.
 */
export function checkLimits(policy: PlanPolicy): Limits {
  const { autosize = false, min = 0, max = Infinity, blockSize, canCreate = true, canDestroy = true } = policy;
  if (typeof autosize !== 'boolean') throw new InvalidSliceGridArgumentError('autosize must be true or false');
  if (!Number.isSafeInteger(min) || min < 0) throw new InvalidSliceGridArgumentError(`min must be a whole number of blocks, 0 or more, not ${min}`);
  if (max !== Infinity && (!Number.isSafeInteger(max) || max < min)) {
    throw new InvalidSliceGridArgumentError(`max must be a whole number of blocks no smaller than min (${min}), not ${max}`);
  }
  if (blockSize !== undefined) checkSize(blockSize, 'blockSize');
  if (autosize && blockSize === undefined) {
    throw new InvalidSliceGridArgumentError("autosize needs blockSize: the size in MB of the servers 'create' is asked for");
  }
  return { autosize, min, max, blockSize, canCreate: canCreate !== false, canDestroy: canDestroy !== false };
}
