// Builds reuse docker's layer cache, against the real engine: an element class image has its
// dependencies (package.json, package-lock.json, node_modules/) in a layer before its code, so
// a push that changes only code makes only a new code layer; and a user's own Dockerfile,
// built again through buildImage with only its code changed, reuses its cached steps.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildElementImage, buildImage, ensureRuntimeImage } from '../../launcher/index.js';
import { docker } from '../support/docker.js';

const repo = `quarry/test-layers-${randomBytes(4).toString('hex')}`;
const tags: string[] = [];
const folders: string[] = [];

test.after.always(async () => {
  // By tag only: an image that is shared (the runtime, the base) is never touched.
  for (const tag of tags) await docker.getImage(tag).remove().catch(() => undefined);
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function tempFolder(prefix: string): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  folders.push(folder);
  return folder;
}

function tagged(name: string): string {
  const tag = `${repo}:${name}`;
  tags.push(tag);
  return tag;
}

async function layers(tag: string): Promise<string[]> {
  return (await docker.getImage(tag).inspect()).RootFS.Layers ?? [];
}

/** The sizes of the image's steps that made a layer, newest first, with what made them. */
async function layerSteps(tag: string): Promise<Array<{ size: number; by: string }>> {
  const history = (await docker.getImage(tag).history()) as Array<{ Size: number; CreatedBy: string }>;
  return history.filter((h) => h.Size > 0).map((h) => ({ size: h.Size, by: h.CreatedBy }));
}

/** The line docker printed right after a step's heading (`Using cache`, `Running in …`, or the layer). */
function afterStep(lines: string[], step: RegExp): string | undefined {
  const at = lines.findIndex((l) => /^Step \d+\/\d+ : /.test(l) && step.test(l));
  return at >= 0 ? lines[at + 1] : undefined;
}

test.serial('an element class whose code alone changed shares every layer but the code one', async (t) => {
  const folder = tempFolder('quarry-layers-class-');
  writeFileSync(join(folder, 'package.json'), '{ "name": "layers-class", "dependencies": { "dep": "1.0.0" } }\n');
  writeFileSync(join(folder, 'package-lock.json'), '{ "lockfileVersion": 3 }\n');
  mkdirSync(join(folder, 'node_modules', 'dep', 'lib'), { recursive: true });
  writeFileSync(join(folder, 'node_modules', 'dep', 'package.json'), '{ "name": "dep", "version": "1.0.0", "type": "module", "main": "lib/index.js" }\n');
  writeFileSync(join(folder, 'node_modules', 'dep', 'lib', 'index.js'), `export const data = ${JSON.stringify('x'.repeat(100_000))};\n`);
  writeFileSync(join(folder, 'node_modules', 'dep', 'README.md'), '# dep\n');
  writeFileSync(join(folder, 'index.js'), "import { element } from 'quarry/runtime';\nexport default element({ async onPush() {} });\n");

  const runtime = await ensureRuntimeImage(docker);
  const a = tagged('a');
  const b = tagged('b');
  t.is(await buildElementImage(docker, { folder, tag: a }), 'built');
  writeFileSync(join(folder, 'index.js'), "import { element } from 'quarry/runtime';\n// changed\nexport default element({ async onPush() {} });\n");
  const lines: string[] = [];
  t.is(await buildElementImage(docker, { folder, tag: b, onLine: (l) => lines.push(l) }), 'built');

  const [base, la, lb] = await Promise.all([layers(runtime), layers(a), layers(b)]);
  t.is(la.length, base.length + 2, 'the runtime, then a dependency layer and a code layer');
  t.is(lb.length, la.length);
  t.deepEqual(la.slice(0, -1), lb.slice(0, -1), 'every layer but the last is shared');
  t.not(la.at(-1), lb.at(-1), 'the code layer is new');
  t.deepEqual(la.slice(0, base.length), base, 'on top of the runtime image');
  t.is(la.at(-2), lb.at(-2), 'the dependency layer is the same layer');
  t.regex(afterStep(lines, /COPY deps\//) ?? '', /Using cache/, lines.join('\n'));

  const [stepsA, stepsB] = await Promise.all([layerSteps(a), layerSteps(b)]);
  const [codeA, depsA] = stepsA;
  const [codeB, depsB] = stepsB;
  t.true(depsA!.size > 100_000, `the dependency layer holds node_modules (${depsA!.size} bytes)`);
  t.is(depsA!.size, depsB!.size);
  t.true(codeA!.size < 1_000 && codeB!.size < 1_000, `the code layers are the code only (${codeA!.size}, ${codeB!.size} bytes)`);
  t.log(`dependency layer ${depsA!.size} bytes (shared), code layers ${codeA!.size} and ${codeB!.size} bytes`);
});

test.serial("a user's Dockerfile built again with only its code changed uses docker's cache", async (t) => {
  const folder = tempFolder('quarry-layers-dockerfile-');
  writeFileSync(join(folder, 'Dockerfile'), `FROM quarry/node:20
WORKDIR /srv
COPY package.json ./
RUN echo "installed for $(wc -c < package.json) bytes of manifest" > installed.txt
COPY index.js ./
CMD ["node", "index.js"]
`);
  writeFileSync(join(folder, 'package.json'), '{ "name": "layers-user" }\n');
  writeFileSync(join(folder, 'index.js'), "console.log('one');\n");

  const a = tagged('user-a');
  const b = tagged('user-b');
  const first: string[] = [];
  t.is(await buildImage(docker, { folder, tag: a, onLine: (l) => first.push(l) }), 'built');
  t.regex(afterStep(first, /RUN /) ?? '', /Running in/, first.join('\n'));
  writeFileSync(join(folder, 'index.js'), "console.log('two');\n");
  const second: string[] = [];
  t.is(await buildImage(docker, { folder, tag: b, onLine: (l) => second.push(l) }), 'built');
  t.regex(afterStep(second, /COPY package\.json/) ?? '', /Using cache/, second.join('\n'));
  t.regex(afterStep(second, /RUN /) ?? '', /Using cache/, second.join('\n'));
  t.notRegex(afterStep(second, /COPY index\.js/) ?? '', /Using cache/, second.join('\n'));

  const [la, lb] = await Promise.all([layers(a), layers(b)]);
  t.is(lb.length, la.length);
  t.deepEqual(la.slice(0, -1), lb.slice(0, -1), 'every layer but the last is shared');
  t.not(la.at(-1), lb.at(-1), 'the code layer is new');
  const [code] = await layerSteps(b);
  t.log(`second build: ${second.filter((l) => /Using cache/.test(l)).length} steps from the cache, new code layer ${code!.size} bytes`);
});

test.serial('an element image under its tag but made on another runtime is made again on this one; then it is cached', async (t) => {
  const folder = tempFolder('quarry-layers-runtime-');
  writeFileSync(join(folder, 'index.js'), "import { element } from 'quarry/runtime';\nexport default element({ async onPush() {} });\n");
  const runtime = await ensureRuntimeImage(docker);
  const tag = tagged('old-runtime');
  // The tag held by an image of another runtime (here: the bare node base, which has no runtime label).
  await docker.getImage('quarry/node:20').tag({ repo, tag: 'old-runtime' });
  t.is(await buildElementImage(docker, { folder, tag }), 'built');
  const made = await docker.getImage(tag).inspect();
  t.is(made.Config.Labels?.['quarry.runtime'], runtime);
  t.is(await buildElementImage(docker, { folder, tag }), 'cached');
  t.is((await docker.getImage(tag).inspect()).Id, made.Id);
});
