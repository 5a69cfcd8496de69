import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SliceGrid, SliceGridFileError } from '../../slicegrid/index.js';
import { gridWithCloud } from './cloud.js';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slicegrid-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a grid loaded from its file is the grid that wrote it', async (t) => {
  const file = join(await tempDir(t), 'grid.json');
  const { grid } = gridWithCloud({ autosize: true, blockSize: 1000, file });
  await grid.addBlock({ id: 'r1', size: 2000, tags: ['router'] });
  await grid.addMany([
    { id: 'shop.web.1', size: 300 },
    { id: 'shop.web.2', size: 300 },
    { id: 'shop.router.1', size: 100, tags: ['router'] },
    { id: 'pair-a', size: 50, group: 'pair' },
    { id: 'lonely.9', size: 70, group: null },
  ]);
  await grid.remove('shop.web.2');

  const again = new SliceGrid({ autosize: true, blockSize: 1000, file });
  t.deepEqual(again.blocks(), [], 'nothing is read before open');
  await again.open();
  t.deepEqual(again.toJSON(), grid.toJSON());
  t.deepEqual(again.blocks(), grid.blocks());
  t.deepEqual(again.slices(), grid.slices());
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), grid.toJSON(), 'the file holds the state once the call resolved');
});

test('many calls at once share writes, and each resolves once its change is on disk', async (t) => {
  const file = join(await tempDir(t), 'grid.json');
  const { grid } = gridWithCloud({ autosize: true, blockSize: 1000, file });
  const calls = Array.from({ length: 100 }, (_, i) =>
    grid.add(`s.n.${i}`, 10 + (i % 7)).then(async () => {
      const saved = JSON.parse(await readFile(file, 'utf8')) as { blocks: Array<{ slices: Array<{ id: string }> }> };
      return saved.blocks.some((b) => b.slices.some((s) => s.id === `s.n.${i}`));
    }),
  );
  t.true((await Promise.all(calls)).every(Boolean));
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), grid.toJSON());
});

test('a crash in the middle of a write never leaves a broken file', async (t) => {
  const dir = await tempDir(t);
  const writer = join(import.meta.dirname, 'crash-writer.ts');
  const runs = [120, 260, 400].map(async (delay, n) => {
    const file = join(dir, `grid${n}.json`);
    const child = spawn(process.execPath, ['--import', 'tsx', writer, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, delay));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const grid = new SliceGrid({ file });
    await grid.open(); // throws SliceGridFileError on a torn file
    return grid.slices().length;
  });
  const counts = await Promise.all(runs);
  t.true(counts.every((n) => n % 200 === 0), `whole batches only: ${counts.join(', ')}`);
  t.true(counts.some((n) => n > 0), 'the writer got some batches down');
  t.false((await readdir(dir)).some((name) => name.endsWith('.tmp')), 'opening cleared what the killed writers left');
});

test('a temporary file left by a crash is ignored and cleaned away', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'grid.json');
  const grid = new SliceGrid({ file });
  await grid.addBlock({ id: 'a', size: 100 });
  await writeFile(join(dir, '.grid.json.999.0.tmp'), '{"version":1,"blo');
  const again = new SliceGrid({ file });
  await again.open();
  t.deepEqual(again.toJSON(), grid.toJSON());
  t.deepEqual(await readdir(dir), ['grid.json']);
});

test('a file that is not a grid is refused with its path and the reason', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'grid.json');
  await writeFile(file, '{"version":1,"blocks":[{"id":"a","size":100,"tags":[],"slices":[{"id":"x","size":200,"tags":[],"group":null}]}]}');
  await t.throwsAsync(new SliceGrid({ file }).open(), { instanceOf: SliceGridFileError, message: /grid\.json.*"x" \(200 MB.*does not fit/ });
  await writeFile(file, '{"version":1,"blo');
  await t.throwsAsync(new SliceGrid({ file }).add('x', 1), { instanceOf: SliceGridFileError, message: /not valid JSON/ });
  await writeFile(file, '{"version":7,"blocks":[]}');
  await t.throwsAsync(new SliceGrid({ file }).open(), { instanceOf: SliceGridFileError, message: /version 7/ });
});

test('a write that fails rejects the call; the change stays in memory', async (t) => {
  const file = join(await tempDir(t), 'no', 'such', 'dir', 'grid.json');
  const grid = new SliceGrid({ file });
  await t.throwsAsync(grid.addBlock({ id: 'a', size: 100 }), { instanceOf: SliceGridFileError, message: /cannot write the grid file/ });
  t.is(grid.blocks().length, 1);
});
