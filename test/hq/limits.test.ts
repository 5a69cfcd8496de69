import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  commitAll, gitEnv, must, push, refOf, removeStackImages, run, startTestHq, uniqueStack, type TestHq,
} from './harness.js';
import type { HqOptions } from '../../hq/index.js';

// Each test starts its own HQ with its own small limits (as startHq options) and pushes its own stack.
const stacks: string[] = [];
const hqs: TestHq[] = [];
test.after.always(async () => {
  for (const stack of stacks) await removeStackImages(stack);
  for (const hq of hqs) await hq.close();
});

async function hqWith(options: Partial<HqOptions>): Promise<TestHq> {
  const hq = await startTestHq(options);
  hqs.push(hq);
  return hq;
}

function newStack(base: string): string {
  const stack = uniqueStack(base);
  stacks.push(stack);
  return stack;
}

/** A one-node stack (`app`, built from ./app with this Dockerfile) as a fresh git repo. */
async function oneNodeRepo(t: TestHq, dockerfile: string): Promise<string> {
  const repo = join(t.dir, `work-${randomBytes(3).toString('hex')}`);
  mkdirSync(join(repo, 'app'), { recursive: true });
  writeFileSync(join(repo, 'quarry.yml'),
    'version: 1\nnodes:\n  app:\n    type: service\n    build: ./app\n    port: 8080\n    command: [node, -e, "setInterval(() => {}, 1e6)"]\n');
  writeFileSync(join(repo, 'app', 'Dockerfile'), dockerfile);
  await commitAll(repo, 'one node', true);
  return repo;
}

test('a build that runs past buildTimeout is stopped and the push rejected; the next push proceeds', async (tt) => {
  const t = await hqWith({ buildTimeout: 3000 });
  const stack = newStack('slowbuild');
  const repo = await oneNodeRepo(t, `FROM quarry/node:20\nRUN echo ${stack} && sleep 600\n`);

  const slow = await push(t, repo, stack);
  tt.not(slow.code, 0);
  tt.regex(slow.stderr, /remote: node app: the docker build of quarry\/[a-z0-9-]+-app:[0-9a-f]+ ran past buildTimeout \(3 s\) and was stopped; .*"buildTimeout" in HQ's config/);
  tt.regex(slow.stderr, /remote: push rejected; what runs keeps running/);
  tt.regex(slow.stdout, /\[remote rejected\] \(pre-receive hook declined\)/);
  tt.is(await refOf(t.home.repo(stack)), '', 'the ref was not made');

  writeFileSync(join(repo, 'app', 'Dockerfile'), `FROM quarry/node:20\nRUN echo ${stack}\n`);
  const good = await commitAll(repo, 'a quick build');
  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  tt.is(await refOf(t.home.repo(stack)), good);
});

test('a pack bigger than maxPushSize is refused by git and moves nothing; a small push then goes through', async (tt) => {
  const t = await hqWith({ maxPushSize: 100 * 1024 });
  const stack = newStack('bigpush');
  const repo = await oneNodeRepo(t, 'FROM quarry/node:20\n');
  const first = (await must(run('git', ['rev-parse', 'HEAD'], { cwd: repo }))).stdout.trim();
  tt.is((await push(t, repo, stack)).code, 0);
  tt.is(await refOf(t.home.repo(stack)), first);
  const set = await run('git', ['--git-dir', t.home.repo(stack), 'config', 'receive.maxInputSize']);
  tt.is(set.stdout.trim(), String(100 * 1024));

  writeFileSync(join(repo, 'big.bin'), randomBytes(1 << 20));
  await commitAll(repo, 'a big file');
  const big = await push(t, repo, stack);
  tt.not(big.code, 0);
  tt.regex(`${big.stdout}\n${big.stderr}`, /pack exceeds maximum allowed size/);
  tt.regex(big.stderr, /quarry: the push is bigger than maxPushSize \(100 KB\) in HQ's config; .*"maxPushSize"/);
  tt.is(await refOf(t.home.repo(stack)), first, 'the ref did not move');

  await must(run('git', ['reset', '-q', '--hard', first], { cwd: repo, env: gitEnv('/dev/null', 0) }));
  writeFileSync(join(repo, 'small.txt'), 'small\n');
  const small = await commitAll(repo, 'a small file');
  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  tt.is(await refOf(t.home.repo(stack)), small);
});

test('a build that goes past buildMemory fails and the push is rejected naming buildMemory', async (tt) => {
  const t = await hqWith({ buildMemory: 64 * 1024 * 1024 });
  const stack = newStack('fatbuild');
  const repo = await oneNodeRepo(t,
    `FROM quarry/node:20\nRUN echo ${stack} && node -e "const a=[]; for(;;) a.push(Buffer.alloc(1e6, 1))"\n`);

  const r = await push(t, repo, stack);
  tt.not(r.code, 0);
  tt.regex(r.stderr, /remote: docker build of app \(quarry\/[a-z0-9-]+-app:[0-9a-f]+\) failed: /);
  tt.regex(r.stderr, /remote: a build step was killed, most likely for going past buildMemory \(64 MB\); .*"buildMemory" in HQ's config/);
  tt.is(await refOf(t.home.repo(stack)), '', 'the ref was not made');
});
