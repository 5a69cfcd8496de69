import { createHash, createHmac } from 'node:crypto';
import type { SourceTree } from './source-tree.js';

/**
 * The content digest of a folder: every file's path (relative to the folder), its
 * executable bit and its bytes. Two folders with the same files give the same digest
 * wherever they are, so an unchanged build folder never causes a redeploy.
 */
export function folderDigest(tree: SourceTree, folder: string): string {
  const hash = createHash('sha256');
  const prefix = folder === '' ? '' : `${folder}/`;
  for (const path of tree.files(folder)) {
    if (path.split('/').includes('.git')) continue;
    const bytes = tree.readBytes(path) ?? new Uint8Array();
    hash.update(`${path.slice(prefix.length)}\0${tree.isExecutable(path) ? 'x' : '-'}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

/** A digest of plain data, stable whatever the order of object keys. */
export function dataDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/**
 * `dataDigest` under a secret key (HMAC-SHA256): the same data and key give the same digest,
 * but without the key nobody can test a guess of the data against it. For digests that are
 * shown where the data is secret (a container's `quarry.digest` label covers the stack's env).
 */
export function keyedDigest(key: string, value: unknown): string {
  if (key === '') throw new RangeError('a keyed digest needs a key');
  return createHmac('sha256', key).update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
