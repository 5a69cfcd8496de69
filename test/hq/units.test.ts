import test from 'ava';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWrite } from '../../home/index.js';
import { HomeInUseError, PushRefusedError, StackNameError } from '../../hq/errors.js';
import { startHq } from '../../hq/index.js';
import { stackFromPath } from '../../hq/stack-name.js';
import { parseGitCommand } from '../../hq/push/git-command.js';
import { deployedUpdate } from '../../hq/push/refs.js';
import { tempDir } from './harness.js';

test('a git path names a stack in each form git sends, and nothing else', (t) => {
  const named: [string, string][] = [['/docsearch.git', 'docsearch'], ['docsearch.git', 'docsearch'], ['/docsearch', 'docsearch'],
    ['docsearch', 'docsearch'], ['/a-1/', 'a-1'], [`/${'a'.repeat(63)}`, 'a'.repeat(63)]];
  for (const [path, stack] of named) {
    t.is(stackFromPath(path), stack, path);
  }
  for (const path of ['/', '/Docsearch', '/doc_search', '/1doc', '/a/b', '/../x', `/${'a'.repeat(64)}`, '/~user/x', '']) {
    t.throws(() => stackFromPath(path), { instanceOf: StackNameError }, path);
  }
});

test('the git command of an exec request is read as git quotes it', (t) => {
  t.deepEqual(parseGitCommand("git-receive-pack '/docsearch.git'"), { service: 'git-receive-pack', path: '/docsearch.git' });
  t.deepEqual(parseGitCommand("git-upload-pack 'docsearch'"), { service: 'git-upload-pack', path: 'docsearch' });
  t.deepEqual(parseGitCommand("git receive-pack '/x'"), { service: 'git-receive-pack', path: '/x' });
  t.deepEqual(parseGitCommand("git-upload-pack 'it'\\''s'"), { service: 'git-upload-pack', path: "it's" });
  for (const bad of ['ls', 'git-receive-pack', "git-receive-pack '/x' extra", "git-receive-pack '/x'; rm -rf /", 'git-upload-archive /x', "git-receive-pack 'open"]) {
    t.throws(() => parseGitCommand(bad), undefined, bad);
  }
});

const Z = '0'.repeat(40);
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

test('only main or master is deployed, one at a time, and never deleted', (t) => {
  t.deepEqual(deployedUpdate([{ oldSha: Z, newSha: A, ref: 'refs/heads/main' }]).newSha, A);
  t.deepEqual(deployedUpdate([{ oldSha: A, newSha: B, ref: 'refs/heads/master' }]).newSha, B);
  const refused = [
    [{ oldSha: Z, newSha: A, ref: 'refs/heads/dev' }],
    [{ oldSha: Z, newSha: A, ref: 'refs/tags/v1' }],
    [{ oldSha: Z, newSha: A, ref: 'refs/heads/main' }, { oldSha: Z, newSha: A, ref: 'refs/heads/master' }],
    [{ oldSha: A, newSha: Z, ref: 'refs/heads/main' }],
    [],
  ];
  for (const updates of refused) t.throws(() => deployedUpdate(updates), { instanceOf: PushRefusedError }, JSON.stringify(updates));
});

test('atomicWrite replaces a file whole and leaves no temporary file', (t) => {
  const dir = tempDir('quarry-atomic-');
  const file = join(dir, 'f.json');
  atomicWrite(file, 'one');
  atomicWrite(file, 'two', 0o600);
  t.is(readFileSync(file, 'utf8'), 'two');
  t.deepEqual(readdirSync(dir), ['f.json']);
  t.throws(() => atomicWrite(join(dir, 'missing', 'f'), 'x'));
  t.deepEqual(readdirSync(dir), ['f.json']);
  rmSync(dir, { recursive: true, force: true });
});

test('HQ keeps its host key across restarts, and a second HQ on the same home is refused', async (t) => {
  const dir = tempDir('quarry-hostkey-');
  const home = join(dir, 'home');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const quiet = () => undefined;
  const first = await startHq({ home, sshPort: 0, host: '127.0.0.1', log: quiet });
  await t.throwsAsync(startHq({ home, sshPort: 0, host: '127.0.0.1', log: quiet }), { instanceOf: HomeInUseError });
  const print = first.hostKeyFingerprint;
  await first.close();
  const again = await startHq({ home, sshPort: 0, host: '127.0.0.1', log: quiet });
  t.is(again.hostKeyFingerprint, print);
  t.regex(readFileSync(join(home, 'ssh_host_ed25519_key.pub'), 'utf8'), /^ssh-ed25519 /);
  await again.close();
});
