// The home's state is private to its user (issue 20, secrets at rest): the durable write
// makes files 0600 unless told otherwise, `ensure` makes folders 0700, and an old home with
// looser modes is tightened (`makeHomePrivate`, at HQ's start), the pushed code left as git made it.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { atomicWrite, atomicWriteAsync, HomeLayout, makeHomePrivate, makePrivate } from '../../home/index.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-private-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a durable write is 0600 unless told otherwise, whatever the umask, and replacing a looser file makes it 0600', async (t) => {
  const dir = tempDir(t);
  const before = process.umask(0);
  try {
    atomicWrite(join(dir, 'a'), 'secret');
    await atomicWriteAsync(join(dir, 'b'), 'secret');
  } finally {
    process.umask(before);
  }
  t.is(modeOf(join(dir, 'a')), 0o600);
  t.is(modeOf(join(dir, 'b')), 0o600);

  writeFileSync(join(dir, 'old'), 'was public', { mode: 0o644 });
  chmodSync(join(dir, 'old'), 0o644);
  atomicWrite(join(dir, 'old'), 'now private');
  t.is(modeOf(join(dir, 'old')), 0o600);

  // What others must read says so.
  atomicWrite(join(dir, 'key.pub'), 'ssh-ed25519 AAAA\n', 0o644);
  t.is(modeOf(join(dir, 'key.pub')), 0o644);
});

test('ensure makes a folder and its missing parents 0700', (t) => {
  const home = new HomeLayout(join(tempDir(t), 'home'));
  home.ensure(home.stackEnv('shop'));
  for (const dir of [home.root, home.stacksDir, home.stackDir('shop'), home.stackEnv('shop')]) t.is(modeOf(dir), 0o700, dir);
});

test('makePrivate takes group and others off a tree, keeps an owner\'s x bit, follows no link, and says what it changed once', (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'sub'), { recursive: true, mode: 0o755 });
  writeFileSync(join(tree, 'sub', 'data'), 'x', { mode: 0o644 });
  writeFileSync(join(tree, 'run.sh'), 'x', { mode: 0o755 });
  writeFileSync(join(tree, 'fine'), 'x', { mode: 0o600 });
  writeFileSync(join(dir, 'outside'), 'x', { mode: 0o644 });
  symlinkSync(join(dir, 'outside'), join(tree, 'link'));
  chmodSync(tree, 0o755);
  chmodSync(join(tree, 'sub'), 0o755);
  chmodSync(join(dir, 'outside'), 0o644);

  const made = makePrivate(tree, { recursive: true });
  t.deepEqual(made.folders.sort(), [tree, join(tree, 'sub')]);
  t.deepEqual(made.files.sort(), [join(tree, 'run.sh'), join(tree, 'sub', 'data')]);
  t.is(modeOf(tree), 0o700);
  t.is(modeOf(join(tree, 'sub', 'data')), 0o600);
  t.is(modeOf(join(tree, 'run.sh')), 0o700);
  t.is(modeOf(join(dir, 'outside')), 0o644, 'a link is not followed');
  t.deepEqual(makePrivate(tree, { recursive: true }), { files: [], folders: [] }, 'the second time there is nothing to do');
  t.deepEqual(makePrivate(join(dir, 'missing'), { recursive: true }), { files: [], folders: [] });
});

test('makeHomePrivate: an old home\'s state becomes private; the pushed code keeps git\'s modes inside its 0700 stack folder', (t) => {
  const home = new HomeLayout(join(tempDir(t), 'home'));
  const loose = (path: string, text = 'x') => {
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    writeFileSync(path, text, { mode: 0o644 });
    chmodSync(path, 0o644);
  };
  const release = join(home.stackBuild('shop'), 'v1');
  loose(join(release, 'plan.json'), '{"env":{"PIN":"1234"}}');
  loose(join(release, 'release.json'));
  loose(join(home.stackEnv('shop'), 'PIN'), '1234');
  loose(join(home.tasksDir, 't.json'));
  loose(join(home.etcdDir, 'member', 'wal', '0.wal'));
  loose(join(home.repo('shop'), 'config'));
  loose(join(home.srcVersions('shop'), 'abc', 'quarry.yml'), 'env: { PIN: "1234" }');
  loose(join(home.keysDir, 'quarry.pub'));
  loose(home.gridFile);
  for (const d of [home.root, home.stacksDir, home.stackDir('shop'), home.stackBuild('shop'), release, home.stackEnv('shop'), home.srcVersions('shop')]) chmodSync(d, 0o755);

  const made = makeHomePrivate(home);
  for (const d of [home.root, home.stacksDir, home.stackDir('shop'), home.stackBuild('shop'), release, home.stackEnv('shop'), home.tasksDir,
    home.etcdDir, join(home.etcdDir, 'member', 'wal'), home.srcVersions('shop'), home.keysDir, home.gridDir]) t.is(modeOf(d), 0o700, d);
  for (const f of [join(release, 'plan.json'), join(release, 'release.json'), join(home.stackEnv('shop'), 'PIN'), join(home.tasksDir, 't.json'),
    join(home.etcdDir, 'member', 'wal', '0.wal'), home.gridFile]) t.is(modeOf(f), 0o600, f);
  // The pushed code: as git made it (docker builds copy file modes into images).
  t.is(modeOf(join(home.repo('shop'), 'config')), 0o644);
  t.is(modeOf(join(home.srcVersions('shop'), 'abc', 'quarry.yml')), 0o644);
  t.is(modeOf(join(home.srcVersions('shop'), 'abc')), 0o755);
  t.is(modeOf(join(home.keysDir, 'quarry.pub')), 0o644, 'a public key stays public');
  t.true(made.files.length >= 6 && made.folders.length >= 12, JSON.stringify(made));
  t.deepEqual(makeHomePrivate(home), { files: [], folders: [] });
});
