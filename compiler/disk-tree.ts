import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { normalize, type SourceTree } from './source-tree.js';

/**
 * A SourceTree over a folder on disk. Reads lazily; `.git` is never looked into. A path with
 * `..` is answered as absent without asking the disk: the compiler refuses such paths before
 * it looks them up, and this keeps a slip from reaching outside the folder.
 */
export function diskTree(root: string): SourceTree {
  const abs = (path: string) => {
    const inside = normalize(path);
    return inside.split('/').includes('..') ? undefined : join(root, inside);
  };
  const stat = (path: string) => {
    const at = abs(path);
    if (at === undefined) return undefined;
    try {
      return statSync(at);
    } catch {
      return undefined;
    }
  };
  const read = (path: string) => {
    try {
      return stat(path)?.isFile() ? readFileSync(abs(path)!) : undefined;
    } catch {
      return undefined;
    }
  };
  const entries = (path: string): string[] => {
    const at = abs(path);
    if (at === undefined) return [];
    try {
      return readdirSync(at).filter((name) => name !== '.git').sort();
    } catch {
      return [];
    }
  };
  const files = (dir: string): string[] => {
    const out: string[] = [];
    const walk = (folder: string) => {
      for (const name of entries(folder)) {
        const path = folder === '' ? name : `${folder}/${name}`;
        const s = stat(path);
        if (s?.isDirectory()) walk(path);
        else if (s?.isFile()) out.push(path);
      }
    };
    walk(normalize(dir));
    return out.sort();
  };
  return {
    readText: (path) => read(path)?.toString('utf8'),
    readBytes: (path) => read(path),
    isFile: (path) => stat(path)?.isFile() ?? false,
    isDirectory: (path) => stat(path)?.isDirectory() ?? false,
    entries,
    files,
    isExecutable: (path) => ((stat(path)?.mode ?? 0) & 0o111) !== 0,
  };
}
