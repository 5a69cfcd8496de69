// Old images leave an engine (launcher/image-gc.ts) against the real docker engine: the
// decided tags are untagged and their images deleted, the others stay, an image a (created,
// never started) container uses is skipped and said, bytes freed count the top layers only,
// and a freshly tagged image is spared. Tiny images with tags of a stack no one else has;
// only those tags (and the containers made here) are removed afterwards.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, collectImages, imagesInUse, NODE_BASE_IMAGE } from '../../launcher/index.js';
import { imageGc } from '../../plan/index.js';
import { docker, removeContainer, TEST_LABEL } from '../support/docker.js';

const stack = `gctest${process.pid}${randomBytes(3).toString('hex')}`;
const tag = (name: string, letter: string) => `quarry/${stack}-${name}:${letter.repeat(12)}`;
const PAYLOAD = 64 * 1024;

const A = tag('web', 'a');
const B1 = tag('web', 'b');
const B2 = tag('web', 'e');
const C = tag('web', 'c');
const D = tag('worker', 'd');
const F = tag('web', 'f');
const mine = [A, B1, B2, C, D, F];
const containers: string[] = [];
const folders: string[] = [];

/** A tiny image on the node base: one layer of PAYLOAD random bytes, so every one differs. */
async function tinyImage(image: string): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'quarry-gc-'));
  folders.push(folder);
  writeFileSync(join(folder, 'Dockerfile'), `FROM ${NODE_BASE_IMAGE}\nLABEL quarry.test=image-gc\nCOPY payload /payload\n`);
  writeFileSync(join(folder, 'payload'), randomBytes(PAYLOAD));
  await buildImage(docker, { folder, tag: image });
}

async function tags(): Promise<Set<string>> {
  return new Set((await docker.listImages()).flatMap((i) => i.RepoTags ?? []));
}

test.before(async () => {
  for (const image of [A, B1, C, D, F]) await tinyImage(image);
  const [repo, version] = B2.split(':') as [string, string];
  await docker.getImage(B1).tag({ repo, tag: version });
  const c = await docker.createContainer({ Image: D, Cmd: ['true'], Labels: { [TEST_LABEL]: 'image-gc' } });
  containers.push(c.id);
});

test.after.always(async () => {
  for (const id of containers) await removeContainer(id);
  for (const image of mine) {
    await docker.getImage(image).remove({ noprune: false }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
  }
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

test.serial('imagesInUse: the tag a created container was made with', async (t) => {
  t.true((await imagesInUse(docker)).includes(D));
});

test.serial('the decision\'s tags go, the rest stay; in use is skipped and said; bytes count the top layer', async (t) => {
  let asked: string[] = [];
  const lines: string[] = [];
  const missing = tag('web', '0');
  const result = await collectImages(docker, (present) => {
    asked = present;
    return [A, B1, D, missing];
  }, { minAgeMs: 0, log: (line) => lines.push(line) });

  for (const image of [...mine, NODE_BASE_IMAGE]) t.true(asked.includes(image), `${image} was offered to the decision`);
  t.false(asked.includes('<none>:<none>'));
  t.deepEqual(result.removed, [A, B1]);
  t.deepEqual(result.skipped.map((s) => s.tag), [D, missing]);
  t.regex(result.skipped[0]!.why, new RegExp(`^in use by container \\S+ \\([0-9a-f]{12}\\)$`));
  t.true(result.skipped[0]!.why.includes(containers[0]!.slice(0, 12)));
  t.is(result.skipped[1]!.why, 'not on this engine');
  t.true(lines.some((l) => l.startsWith(`kept ${D}: in use by container`)), lines.join('\n'));
  t.true(lines.includes(`removed ${B1} (untagged; its image has other tags)`), lines.join('\n'));

  // A's image went with its own layer only: the payload, not the node base it shares.
  t.true(result.bytesFreed >= PAYLOAD, `freed ${result.bytesFreed}`);
  t.true(result.bytesFreed < PAYLOAD + 64 * 1024, `freed ${result.bytesFreed}`);

  const after = await tags();
  t.false(after.has(A));
  t.false(after.has(B1));
  for (const image of [B2, C, D, F, NODE_BASE_IMAGE]) t.true(after.has(image), `${image} stays`);
  // B1's image is still there under B2: only the tag went.
  t.truthy(await docker.getImage(B2).inspect());
});

test.serial('a freshly tagged image is spared by default (a push may be in flight)', async (t) => {
  const result = await collectImages(docker, () => [F]);
  t.deepEqual(result.removed, []);
  t.is(result.skipped.length, 1);
  t.regex(result.skipped[0]!.why, /^tagged \d+ (s|min) ago, less than 1 h: it may belong to a push in flight$/);
  t.true((await tags()).has(F));
  t.is(result.bytesFreed, 0);
});

test.serial('with imageGc deciding: the old release\'s image goes, the kept and the used stay, nothing else is touched', async (t) => {
  const releases = { [stack]: [{ version: 1, images: [F, D] }, { version: 2, images: [C, B2] }] };
  const inUse = await imagesInUse(docker);
  let kept: ReturnType<typeof imageGc>['keep'] = [];
  const result = await collectImages(docker, (present) => {
    const decision = imageGc({ releases, keep: 1, inUse, present });
    kept = decision.keep;
    return decision.remove;
  }, { minAgeMs: 0 });
  t.deepEqual(result.removed, [F]);
  t.deepEqual(result.skipped, []);
  t.true(result.bytesFreed >= PAYLOAD);
  const why = Object.fromEntries(kept.map((k) => [k.tag, k.why]));
  t.is(why[D], 'in use');
  t.is(why[C], 'kept release');
  t.is(why[B2], 'kept release');
  t.is(why[NODE_BASE_IMAGE], 'base image');
  const after = await tags();
  t.false(after.has(F));
  for (const image of [B2, C, D, NODE_BASE_IMAGE]) t.true(after.has(image), `${image} stays`);
});

test.serial('a tag removed meanwhile is gone already, not an error', async (t) => {
  const result = await collectImages(docker, async (present) => {
    t.true(present.includes(C));
    await docker.getImage(C).remove({ noprune: false });
    return [C];
  }, { minAgeMs: 0 });
  t.deepEqual(result.removed, []);
  t.deepEqual(result.skipped, [{ tag: C, why: 'gone already' }]);
});
