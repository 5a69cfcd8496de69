// A path that leaves the repo is refused before anything looks it up: not one question about
// it reaches the tree, so a push cannot learn which files exist on HQ's machine.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { CompileError, compileStack, diskTree, memoryTree, type SourceTree } from '../../compiler/index.js';
import { base, stackWith } from './fixture.js';

/** A tree that writes down every path it is asked about. */
function spyTree(files: Record<string, string>): { tree: SourceTree; asked: string[] } {
  const inner = memoryTree(files);
  const asked: string[] = [];
  const tree = Object.fromEntries(Object.entries(inner).map(([name, fn]) => [name, (path: string) => {
    asked.push(path);
    return (fn as (p: string) => unknown)(path);
  }])) as unknown as SourceTree;
  return { tree, asked };
}

const escapes: Array<[string, Record<string, string>]> = [
  ['build', { 'quarry.yml': base['quarry.yml']!.replace('build: ./web', 'build: ../../../../etc') }],
  ['build, absolute', { 'quarry.yml': base['quarry.yml']!.replace('build: ./web', 'build: /etc') }],
  ['topology', { 'quarry.yml': base['quarry.yml']!.replace('topology: ./topology.yml', 'topology: ../../../../etc/passwd') }],
  ['topology, absolute', { 'quarry.yml': base['quarry.yml']!.replace('topology: ./topology.yml', 'topology: /etc/passwd') }],
  ['main', { 'elements/source/element.yml': `${base['elements/source/element.yml']}main: ../../../../etc/passwd\n` }],
  ['main, absolute', { 'elements/source/element.yml': `${base['elements/source/element.yml']}main: /etc/passwd\n` }],
];

for (const [what, changes] of escapes) {
  test(`a ${what} path that leaves the repo is refused without being looked up`, (t) => {
    const { tree, asked } = spyTree(stackWith(changes));
    t.throws(() => compileStack(tree, { defaultName: 'demo' }), { instanceOf: CompileError, message: /must be (inside|relative)/ });
    t.true(asked.length > 0);
    t.deepEqual(asked.filter((p) => p.includes('etc')), [], `looked up: ${asked.join(', ')}`);
  });
}

test('a tree on disk answers a path with .. as absent, even when the file is there', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-paths-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'repo'));
  writeFileSync(join(dir, 'outside.txt'), 'secret\n');
  const tree = diskTree(join(dir, 'repo'));
  t.false(tree.isFile('../outside.txt'));
  t.is(tree.readText('../outside.txt'), undefined);
  t.deepEqual(tree.entries('..'), []);
  t.deepEqual(tree.files('..'), []);
});
