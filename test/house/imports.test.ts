import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { componentOf, cycles, importGraph, layerOf, LAYERS, REPO } from './import-graph.js';

// The house rules (README "The project"), checked over the code's own imports: the layers
// hold, no folder reaches past another's index.ts, and nothing imports in a circle. Tests may
// reach anywhere, so test/ is not read.

const edges = importGraph();
const files = new Set(edges.flatMap((e) => [e.from, e.to]));

/** A unit of HQ: one of its subfolders (`hq/deploy`), or one of its own files (`hq/errors.ts`). */
function hqUnit(path: string): string {
  const parts = path.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : path;
}

test('the graph is read: hundreds of imports, every component among them', (t) => {
  t.true(edges.length > 300, `${edges.length} imports read`);
  const seen = new Set([...files].map(componentOf));
  for (const folder of LAYERS.flat()) t.true(seen.has(folder), `${folder}/ imports or is imported`);
});

test('every top-level folder of code has a place in the layers and an index.ts', (t) => {
  const unplaced = [...new Set([...files].map(componentOf))].filter((c) => layerOf(c) < 0);
  t.deepEqual(unplaced, [], 'folders the layers do not name');
  for (const folder of LAYERS.flat().filter((f) => f !== 'bench')) {
    t.true(existsSync(join(REPO, folder, 'index.ts')), `${folder}/index.ts`);
  }
});

test('a folder imports only its own layer and the layers below it', (t) => {
  const upward = edges.filter((e) => layerOf(componentOf(e.to)) < layerOf(componentOf(e.from)))
    .map((e) => `${e.from} -> ${e.to}`);
  t.deepEqual(upward, []);
});

test('no folder reaches past another folder\'s index.ts', (t) => {
  const past = edges.filter((e) => componentOf(e.from) !== componentOf(e.to) && e.to !== `${componentOf(e.to)}/index.ts`)
    .map((e) => `${e.from} -> ${e.to}`);
  t.deepEqual(past, []);
});

test('inside hq/, a subfolder is reached through its index.ts', (t) => {
  const past = edges.filter((e) => componentOf(e.from) === 'hq' && componentOf(e.to) === 'hq')
    .filter((e) => hqUnit(e.to) !== e.to && hqUnit(e.from) !== hqUnit(e.to) && e.to !== `${hqUnit(e.to)}/index.ts`)
    .map((e) => `${e.from} -> ${e.to}`);
  t.deepEqual(past, []);
});

test('no cycles: between folders, between hq\'s subfolders, between files', (t) => {
  const between = edges.filter((e) => componentOf(e.from) !== componentOf(e.to));
  t.deepEqual(cycles([], between.map((e) => [componentOf(e.from), componentOf(e.to)])), [], 'folders');
  const inHq = edges.filter((e) => componentOf(e.from) === 'hq' && componentOf(e.to) === 'hq' && hqUnit(e.from) !== hqUnit(e.to));
  t.deepEqual(cycles([], inHq.map((e) => [hqUnit(e.from), hqUnit(e.to)])), [], 'hq subfolders');
  t.deepEqual(cycles(files, edges.map((e) => [e.from, e.to])), [], 'files');
});

test('the cycle finder finds a circle, a self-import, and nothing in a tree (a fake graph)', (t) => {
  t.deepEqual(cycles(['a', 'b', 'c', 'd'], [['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd']]), [['a', 'b', 'c']]);
  t.deepEqual(cycles(['x'], [['x', 'x']]), [['x']]);
  t.deepEqual(cycles(['a', 'b', 'c'], [['a', 'b'], ['a', 'c'], ['b', 'c']]), []);
});
