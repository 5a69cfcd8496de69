import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { join } from 'node:path';
import { quarry } from '../support/cli.js';
import { docsearchRepo, makeKey, push, refOf, ssh, startTestHq, uniqueStack, gitEnv, run, type TestHq } from './harness.js';

// These never get as far as a build: no docker work, and one HQ for the file.
let t: TestHq;
let repo: string;
test.before(async () => {
  t = await startTestHq();
  repo = await docsearchRepo(t.dir);
  process.env.QUARRY_HOME = t.home.root; // for `quarry keys add`, run in this process
});
test.after.always(async () => { await t?.close(); });

test('a key that is not authorised is refused, and lets in once `quarry keys add` authorised it', async (tt) => {
  const stranger = await makeKey(t.dir, 'stranger');
  const stack = uniqueStack('stranger');
  const r = await push(t, repo, stack, 'main:feature', stranger);
  tt.not(r.code, 0);
  tt.regex(r.stderr, /Permission denied \(publickey\)/);
  tt.false(existsSync(t.home.repo(stack)));

  const added = await quarry(['keys', 'add', `${stranger}.pub`]);
  tt.is(added.code, 0, added.stderr);
  const again = await ssh(stranger, t.hq.sshPort, []);
  tt.regex(again.stderr, /you are authorised \(key SHA256:[A-Za-z0-9+/]+\), but there is no shell here/);
});

test('a stack name that is not a DNS label is refused', async (tt) => {
  for (const path of ['Bad_Name', 'stacks/docsearch', '9lives', '../etc']) {
    const r = await push(t, repo, path);
    tt.not(r.code, 0, path);
    tt.regex(r.stderr, /is not a stack name: a stack's name has lower-case letters, digits and dashes/, path);
  }
  tt.false(existsSync(join(t.home.root, 'stacks', 'Bad_Name')));
});

test('a shell is refused with what the endpoint is for', async (tt) => {
  const r = await ssh(t.key, t.hq.sshPort, []);
  tt.is(r.code, 1);
  tt.regex(r.stderr, /there is no shell here\.\nPush a stack with: git push ssh:\/\/quarry@HOST:PORT\/STACK main/);
});

test('a command other than git\'s is refused', async (tt) => {
  const r = await ssh(t.key, t.hq.sshPort, ['cat', '/etc/passwd']);
  tt.is(r.code, 1);
  tt.regex(r.stderr, /quarry only takes git pushes and fetches here \(git-receive-pack, git-upload-pack\), not 'cat \/etc\/passwd'/);
  tt.notRegex(r.stdout, /root:/);
});

test('a user name other than quarry is refused with the right one', async (tt) => {
  const r = await ssh(t.key, t.hq.sshPort, ['git-upload-pack', "'/anything'"], 'git');
  tt.is(r.code, 1);
  tt.regex(r.stderr, /log in as 'quarry' \(ssh:\/\/quarry@HOST:PORT\/STACK\), not as 'git'/);
});

test('fetching a stack that was never pushed is refused', async (tt) => {
  const stack = uniqueStack('never');
  const r = await run('git', ['ls-remote', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${stack}`], { env: gitEnv(t.key, t.hq.sshPort) });
  tt.not(r.code, 0);
  tt.regex(r.stderr, new RegExp(`there is no stack '${stack}' \\(nothing was pushed to it yet\\)`));
  tt.false(existsSync(t.home.repo(stack)));
});

test('the /NAME.git, NAME and /NAME forms of a path name the same stack', async (tt) => {
  // A push of another branch is refused before anything is built, but only after the
  // path was read and the repo made: so each form reaches the same repo.
  const stack = uniqueStack('paths');
  for (const path of [`/${stack}.git`, stack, `/${stack}`]) {
    const r = await run('git', ['push', `quarry@127.0.0.1:${path}`, 'main:other'], { cwd: repo, env: gitEnv(t.key, t.hq.sshPort) });
    tt.regex(r.stderr, /quarry deploys only the main \(or master\) branch, not other/, path);
  }
  tt.true(existsSync(t.home.repo(stack)));
  tt.is(await refOf(t.home.repo(stack), 'refs/heads/other'), '');
  const hook = readFileSync(join(t.home.repo(stack), 'hooks', 'pre-receive'), 'utf8');
  tt.regex(hook, /pre-receive\.cjs'/);
});

test('a client that offers an authorised public key but cannot sign with it is refused', async (tt) => {
  // An impostor: its own private key, dressed up with the authorised key's public half, so
  // the key offered matches authorized_keys but the signature does not.
  const impostor = ssh2.utils.parseKey(readFileSync(await makeKey(t.dir, 'impostor'), 'utf8'));
  const real = ssh2.utils.parseKey(readFileSync(`${t.key}.pub`, 'utf8'));
  if (impostor instanceof Error || real instanceof Error) throw new Error('keys did not parse');
  impostor.getPublicSSH = () => real.getPublicSSH();
  const outcome = await new Promise<string>((resolve) => {
    const client = new ssh2.Client();
    client.on('ready', () => { client.end(); resolve('logged in'); });
    client.on('error', (err) => resolve(err.message));
    const method: ssh2.PublicKeyAuthMethod = { type: 'publickey', username: 'quarry', key: impostor };
    client.connect({ host: '127.0.0.1', port: t.hq.sshPort, username: 'quarry', readyTimeout: 10_000, authHandler: [method] });
  });
  tt.regex(outcome, /All configured authentication methods failed/);
  tt.false(t.log.some((line) => line.includes('impostor')));
});
