import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { atomicWrite, atomicWriteAsync, HomeLayout, isProcessAlive, quarryHome } from '../../home/index.js';

test('QUARRY_HOME wins; otherwise /home/quarry for root, ~/.quarry for others', (t) => {
  t.is(quarryHome({ QUARRY_HOME: 'rel/home' }), join(process.cwd(), 'rel/home'));
  t.is(quarryHome({}), process.getuid?.() === 0 ? '/home/quarry' : join(process.env.HOME ?? '', '.quarry'));
  const home = new HomeLayout('/q');
  t.is(home.repo('docsearch'), '/q/stacks/docsearch/repo.git');
  t.is(home.runStack('docsearch'), '/q/run/stacks/docsearch.json');
});

test('both durable writes replace a file whole, with its mode, and leave no temporary file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-home-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'f.json');
  atomicWrite(file, 'one', 0o600);
  t.is(readFileSync(file, 'utf8'), 'one');
  t.is(statSync(file).mode & 0o777, 0o600);
  await atomicWriteAsync(file, 'two');
  t.is(readFileSync(file, 'utf8'), 'two');
  t.deepEqual(readdirSync(dir), ['f.json']);
  t.throws(() => atomicWrite(join(dir, 'no', 'f'), 'x'), { code: 'ENOENT' });
});

test('a process is alive while it runs; a zombie and a reaped pid are not', async (t) => {
  t.true(isProcessAlive(process.pid));
  // sh starts a short child, then becomes `sleep`, which never waits for it: a zombie.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => parent.kill('SIGKILL'));
  const zombie = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
  for (let i = 0; i < 100 && !/\) Z/.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 20));
  t.regex(readFileSync(`/proc/${zombie}/stat`, 'utf8'), /\) Z/, 'the child is a zombie');
  t.false(isProcessAlive(zombie));
  t.true(isProcessAlive(parent.pid!));
  parent.kill('SIGKILL');
  await new Promise((r) => parent.once('exit', r));
  t.false(isProcessAlive(parent.pid!));
  t.false(isProcessAlive(0));
  t.false(isProcessAlive(-1));
});
