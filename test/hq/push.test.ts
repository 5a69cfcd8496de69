import test from 'ava';
import { QuarryError } from '../../errors/index.js';
import type { OnRelease } from '../../hq/control.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  commitAll, docsearchRepo, gitEnv, push, refOf, removeStackImages, run, stackImages, startTestHq, uniqueStack, type TestHq,
} from './harness.js';

// One HQ for the file; every test pushes its own stack, so they run side by side.
let t: TestHq;
const stacks: string[] = [];
test.before(async () => { t = await startTestHq(); });
test.after.always(async () => {
  for (const stack of stacks) await removeStackImages(stack);
  await t?.close();
});

function newStack(base: string): string {
  const stack = uniqueStack(base);
  stacks.push(stack);
  return stack;
}

test('a first push is checked, built and published; a broken push after it is rejected and moves nothing', async (tt) => {
  const stack = newStack('docsearch');
  const repo = await docsearchRepo(t.dir);
  const first = (await run('git', ['rev-parse', 'HEAD'], { cwd: repo })).stdout.trim();

  const ok = await push(t, repo, stack);
  tt.is(ok.code, 0, ok.stderr);
  tt.regex(ok.stdout, /\[new branch\]/);
  tt.regex(ok.stderr, /remote: -----> Compiling quarry\.yml/);
  tt.regex(ok.stderr, new RegExp(`remote: -----> Building node web from \\./web \\(quarry/${stack}-web:[0-9a-f]{12}\\)`));
  tt.regex(ok.stderr, /remote: +Step 2\/4 : COPY package\.json server\.js \/app\//);
  tt.regex(ok.stderr, new RegExp(`remote: +plan for ${stack}: 6 instructions`));
  tt.regex(ok.stderr, /remote: +ENSURE +node store/);
  tt.regex(ok.stderr, new RegExp(`remote: -----> ${stack} accepted at ${first.slice(0, 7)}`));

  tt.is(await refOf(t.home.repo(stack)), first, 'the bare repo holds the pushed commit');
  const src = t.home.src(stack);
  const pushedYml = readFileSync(join(repo, 'quarry.yml'), 'utf8');
  tt.is(readFileSync(join(src, 'quarry.yml'), 'utf8'), pushedYml);
  tt.true(existsSync(join(src, 'web', 'server.js')));
  tt.false(existsSync(join(src, '.git')));
  const images = await stackImages(stack);
  tt.true(images.some((tag) => tag.startsWith(`quarry/${stack}-web:`)), images.join(' '));
  tt.true(images.some((tag) => tag.startsWith(`quarry/${stack}-store:`)), images.join(' '));

  // The pushed code can be fetched back (git-upload-pack).
  const clone = join(t.dir, `clone-${stack}`);
  const cloned = await run('git', ['clone', '-q', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${stack}.git`, clone], { env: gitEnv(t.key, t.hq.sshPort) });
  tt.is(cloned.code, 0, cloned.stderr);
  tt.is(readFileSync(join(clone, 'quarry.yml'), 'utf8'), pushedYml);

  // Now a quarry.yml the compiler refuses: a port written as a word.
  const lines = pushedYml.split('\n');
  const at = lines.findIndex((l) => l.trim() === 'port: 8080');
  tt.true(at >= 0);
  lines[at] = lines[at]!.replace('8080', 'eighty');
  writeFileSync(join(repo, 'quarry.yml'), lines.join('\n'));
  await commitAll(repo, 'break the port');

  const broken = await push(t, repo, stack);
  tt.not(broken.code, 0);
  tt.regex(broken.stderr, new RegExp(`remote: quarry\\.yml:${at + 1}:\\d+: .*port`));
  tt.regex(broken.stderr, /remote: 1 error; nothing was changed/);
  tt.regex(broken.stdout, /\[remote rejected\] \(pre-receive hook declined\)/);
  tt.is(await refOf(t.home.repo(stack)), first, 'the ref did not move');
  tt.is(readFileSync(join(src, 'quarry.yml'), 'utf8'), pushedYml, 'src/ still holds the accepted code');
});

test('a failing docker build rejects the push with docker\'s message', async (tt) => {
  const stack = newStack('badbuild');
  const repo = await docsearchRepo(t.dir);
  writeFileSync(join(repo, 'web', 'Dockerfile'), 'FROM quarry/node:20\nCOPY not-in-the-repo.txt /app/\n');
  await commitAll(repo, 'a build that fails');

  const r = await push(t, repo, stack);
  tt.not(r.code, 0);
  tt.regex(r.stderr, /remote: docker build of web \(quarry\/[a-z0-9-]+-web:[0-9a-f]{12}\) failed: .*not-in-the-repo\.txt/);
  tt.regex(r.stderr, /remote: push rejected; what runs keeps running/);
  tt.is(await refOf(t.home.repo(stack)), '', 'the ref was not made');
  tt.false(existsSync(t.home.src(stack)));
  tt.false((await stackImages(stack)).some((tag) => tag.includes('-web:')));
});

test('a push of another branch is refused with the command that deploys it', async (tt) => {
  const stack = newStack('branch');
  const repo = await docsearchRepo(t.dir);
  const r = await push(t, repo, stack, 'main:feature');
  tt.not(r.code, 0);
  tt.regex(r.stderr, /remote: quarry deploys only the main \(or master\) branch, not feature/);
  tt.regex(r.stderr, /remote: To deploy another branch, push it to main: git push quarry feature:main/);
  tt.is(await refOf(t.home.repo(stack), 'refs/heads/feature'), '');
});

test('a quarry.yml that names another stack is refused at its name', async (tt) => {
  const stack = newStack('named');
  const repo = await docsearchRepo(t.dir);
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, `name: elsewhere\n${readFileSync(yml, 'utf8')}`);
  await commitAll(repo, 'named');
  const r = await push(t, repo, stack);
  tt.not(r.code, 0);
  tt.regex(r.stderr, new RegExp(`remote: quarry\\.yml:1:7: this stack is named 'elsewhere', but the push went to stack '${stack}'`));
  tt.is(await refOf(t.home.repo(stack)), '');
});

test('a push with a link out of the repository, or a link loop, is refused', async (tt) => {
  const stack = newStack('link');
  const repo = await docsearchRepo(t.dir);
  await run('ln', ['-s', '/etc/passwd', join(repo, 'web', 'passwd')]);
  await run('ln', ['-s', '..', join(repo, 'web', 'up')]);
  await commitAll(repo, 'a link out and a loop');
  const r = await push(t, repo, stack);
  tt.not(r.code, 0);
  tt.regex(r.stderr, /remote: web\/passwd: a symbolic link out of the repository \('\/etc\/passwd'\) is not allowed/);
  tt.regex(r.stderr, /remote: web\/up: a symbolic link to a folder that holds it \('\.\.'\) is a loop/);
  tt.is(await refOf(t.home.repo(stack)), '');
});

test('onRelease gets the stack, its code and spec, speaks to the pusher, and its failure rejects the push', async (tt) => {
  const calls: { stack: string; quarryYml: boolean; name: string }[] = [];
  const onRelease: OnRelease = async (stack, srcDir, spec, progress) => {
    calls.push({ stack, quarryYml: existsSync(join(srcDir, 'quarry.yml')), name: spec.name });
    progress.step('Launching');
    throw new QuarryError('web did not become healthy (a test release that fails)');
  };
  const own = await startTestHq({ onRelease });
  const stack = uniqueStack('release');
  stacks.push(stack);
  try {
    const repo = await docsearchRepo(own.dir);
    const r = await push(own, repo, stack);
    tt.not(r.code, 0);
    tt.deepEqual(calls, [{ stack, quarryYml: true, name: stack }]);
    tt.regex(r.stderr, /remote: -----> Launching/);
    tt.regex(r.stderr, /remote: web did not become healthy \(a test release that fails\)/);
    tt.is(await refOf(own.home.repo(stack)), '');
    tt.false(existsSync(own.home.src(stack)));
  } finally {
    await own.close();
  }
});
