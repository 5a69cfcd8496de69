/**
 * What the compiler reads a stack from. The compiler itself does no I/O: it asks this
 * interface, which the disk loader implements over a folder and the tests over a table.
 * Paths are POSIX, relative to the stack's root, without a leading `./`.
 */
export interface SourceTree {
  /** The file's text, or undefined when there is no such file. */
  readText(path: string): string | undefined;
  /** The file's bytes, or undefined when there is no such file. */
  readBytes(path: string): Uint8Array | undefined;
  isFile(path: string): boolean;
  isDirectory(path: string): boolean;
  /** The names (not paths) directly inside a folder, sorted; empty when it is no folder. */
  entries(dir: string): string[];
  /** Every file under a folder, recursively, as root-relative paths, sorted. */
  files(dir: string): string[];
  /** Whether a file is executable (its mode matters to an image). */
  isExecutable(path: string): boolean;
}

/** A tree held in memory: `{ 'quarry.yml': '...', 'web/Dockerfile': '...' }`. */
export function memoryTree(files: Record<string, string | Uint8Array>): SourceTree {
  const table = new Map<string, Uint8Array>();
  const encoder = new TextEncoder();
  for (const [path, content] of Object.entries(files)) {
    table.set(normalize(path), typeof content === 'string' ? encoder.encode(content) : content);
  }
  const sorted = [...table.keys()].sort();
  /** The sorted paths under a folder: found by binary search, so each look-up is O(log n + k). */
  const under = (dir: string) => {
    if (dir === '') return sorted;
    const prefix = `${dir}/`;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < sorted.length && sorted[end]!.startsWith(prefix)) end++;
    return sorted.slice(lo, end);
  };
  return {
    readText: (path) => {
      const bytes = table.get(normalize(path));
      return bytes && new TextDecoder().decode(bytes);
    },
    readBytes: (path) => table.get(normalize(path)),
    isFile: (path) => table.has(normalize(path)),
    isDirectory: (path) => {
      const dir = normalize(path);
      return dir === '' || under(dir).length > 0;
    },
    entries: (path) => {
      const dir = normalize(path);
      const prefix = dir === '' ? '' : `${dir}/`;
      const names = new Set(under(dir).map((p) => p.slice(prefix.length).split('/')[0]!));
      return [...names].sort();
    },
    files: (path) => under(normalize(path)),
    isExecutable: () => false,
  };
}

/** `./a//b/` → `a/b`; `.` → ``. Does not resolve `..` (callers refuse paths that leave the tree). */
export function normalize(path: string): string {
  return path
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}
