import { InvalidSliceGridArgumentError } from './errors.js';
import { groupOf } from './slice-id.js';
import type { SliceState } from './packer.js';
import type { BlockSpec, SliceRequest } from './types.js';

export interface NormalSlice {
  id: string;
  size: number;
  tags: readonly string[];
  /** The sorted tags joined: slices with equal keys can go on the same blocks. */
  tagKey: string;
  group: string | null;
}

export interface NormalBlock {
  id: string;
  size: number;
  tags: readonly string[];
  tagKey: string;
}

/** A checked slice, not yet placed. */
export function normalizeSlice(request: SliceRequest): SliceState {
  if (request === null || typeof request !== 'object') {
    throw new InvalidSliceGridArgumentError(`a slice must be an object { id, size, tags? }, not ${String(request)}`);
  }
  const id = checkId(request.id, 'slice');
  const size = checkSize(request.size, `slice "${id}"`);
  const tags = checkTags(request.tags, `slice "${id}"`);
  let group: string | null;
  if (request.group === undefined) group = groupOf(id);
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
  const size = checkSize(spec.size, `${what} "${id}"`);
  const tags = checkTags(spec.tags, `${what} "${id}"`);
  return { id, size, tags, tagKey: tags.join('\n') };
}

/** Whole megabytes, at least one. */
export function checkSize(size: unknown, what: string): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
    throw new InvalidSliceGridArgumentError(`${what}: size must be a whole number of MB above 0, not ${String(size)}`);
  }
  return size;
}

function checkId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id === '' || /\s/.test(id)) {
    throw new InvalidSliceGridArgumentError(`a ${what} id must be a non-empty string without spaces, not ${JSON.stringify(id)}`);
  }
  return id;
}

const NO_TAGS: readonly string[] = Object.freeze([]);

function checkTags(tags: unknown, what: string): readonly string[] {
  if (tags === undefined || (Array.isArray(tags) && tags.length === 0)) return NO_TAGS;
  if (!Array.isArray(tags)) throw new InvalidSliceGridArgumentError(`${what}: tags must be a list of names`);
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag === '' || /[\s,]/.test(tag)) {
      throw new InvalidSliceGridArgumentError(`${what}: a tag must be a name without spaces or commas, not ${JSON.stringify(tag)}`);
    }
  }
  // Frozen: the grid hands the same array out in every SliceInfo and BlockInfo.
  return Object.freeze([...new Set(tags as string[])].sort());
}
