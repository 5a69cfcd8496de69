// Against the real engine: a build whose cached parent is removed while the build goes on
// (another build's image removed, image GC) fails inside docker with "unknown parent image ID"
// or "No such image". buildImage builds again, says so, and ends with the image.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, ensureRuntimeImage } from '../../launcher/index.js';
import { docker } from '../support/docker.js';

const id = randomBytes(4).toString('hex');
const first = `quarry/test-cache-race-${id}:first`;
const second = `quarry/test-cache-race-${id}:second`;
const folders: string[] = [];

test.after.always(async () => {
  for (const tag of [first, second]) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function context(files: Record<string, string | Buffer>): string {
  const folder = mkdtempSync(join(tmpdir(), 'quarry-cache-race-'));
  folders.push(folder);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(folder, name), body);
  return folder;
}

test('a cached parent removed during the build: the build runs again and ends with the image', async (t) => {
  const base = await ensureRuntimeImage(docker);
  const shared = `FROM ${base}\nCOPY mark.txt /mark.txt\nLABEL race=${id}\n`;
  t.is(await buildImage(docker, { folder: context({ Dockerfile: shared, 'mark.txt': id }), tag: first }), 'built');

  // The second build reuses the first's steps from the cache, then copies a large file: while
  // it copies, the first image (the parent it reused) is removed, as a cleanup would.
  const lines: string[] = [];
  let removed: Promise<unknown> | undefined;
  const folder = context({ Dockerfile: `${shared}COPY big.bin /big.bin\n`, 'mark.txt': id, 'big.bin': randomBytes(200 * 1024 * 1024) });
  const result = await buildImage(docker, {
    folder, tag: second,
    onLine: (line) => {
      lines.push(line);
      if (/^Step 4\/4/.test(line) && !removed) removed = docker.getImage(first).remove({ force: true });
    },
  });
  await removed;
  t.is(result, 'built');
  t.true(lines.some((l) => /Using cache/.test(l)), 'the second build reused the first one\'s steps');
  t.true(lines.some((l) => /^the build cache changed under this build .* building again \(2 of 3\)$/.test(l)), lines.join('\n'));
  const image = await docker.getImage(second).inspect();
  t.is(image.Config.Labels?.race, id);
});
