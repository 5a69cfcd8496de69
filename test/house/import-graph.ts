import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * The project's import graph, read from the source as text: every relative `import … from`,
 * `export … from` and `import('…')` with a literal path, from every .ts file of the
 * components (tests, benchmarks' own fixtures and the example stacks are not components).
 */
export interface ImportEdge {
  /** Importing file, relative to the repo root with `/`: `hq/deploy/control.ts`. */
  from: string;
  /** Imported file, the same way: `launcher/index.ts`. */
  to: string;
}

export const REPO = resolve(import.meta.dirname, '../..');

/**
 * The layers, top down (README "The project"). A folder imports only folders of lower
 * layers, and folders of its own layer where it needs them, never making a cycle.
 */
export const LAYERS: string[][] = [
  ['bench'],
  ['cli', 'ui'],
  ['hq', 'runner'],
  ['launcher'],
  ['plan', 'pacific', 'router'],
  ['runtime', 'slicegrid', 'compiler', 'config', 'locknet'],
  ['errors', 'home'],
];

const NOT_COMPONENTS = new Set(['node_modules', 'dist', 'test', 'stacks-example', 'scripts', 'docs', 'bin', '.git', '.ci']);

export function layerOf(folder: string): number {
  const at = LAYERS.findIndex((layer) => layer.includes(folder));
  return at;
}

function sourceFiles(dir: string, depth = 0): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (depth === 0 && (NOT_COMPONENTS.has(entry.name) || entry.name.startsWith('.'))) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sourceFiles(path, depth + 1));
    else if (entry.name.endsWith('.ts') && depth > 0) found.push(path);
  }
  return found;
}

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/gm;

/** Strips comments and the insides of template literals, so that code in them is not read as imports. */
function codeOnly(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
    .replace(/`(?:\\[\s\S]|[^`\\])*`/g, '``');
}

export function importGraph(root = REPO): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of sourceFiles(root)) {
    const text = codeOnly(readFileSync(file, 'utf8'));
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      edges.push({ from: rel(root, file), to: rel(root, target) });
    }
  }
  return edges;
}

function rel(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

/** The top-level folder of a path: `hq` for `hq/deploy/control.ts`. */
export function componentOf(path: string): string {
  return path.split('/')[0]!;
}

/**
 * The cycles of a directed graph (Tarjan's strongly connected components of more than one
 * node, and nodes that import themselves), each as its members sorted.
 */
export function cycles(nodes: Iterable<string>, edges: Array<[string, string]>): string[][] {
  const next = new Map<string, string[]>();
  for (const n of nodes) next.set(n, []);
  for (const [a, b] of edges) {
    if (!next.has(a)) next.set(a, []);
    if (!next.has(b)) next.set(b, []);
    next.get(a)!.push(b);
  }
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    order.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!order.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, order.get(w)!));
      }
    }
    if (low.get(v) === order.get(v)) {
      const members: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        members.push(w);
      } while (w !== v);
      if (members.length > 1 || next.get(v)!.includes(v)) found.push(members.sort());
    }
  };
  for (const v of next.keys()) if (!order.has(v)) visit(v);
  return found;
}
