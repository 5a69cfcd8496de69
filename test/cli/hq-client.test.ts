import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import { startMemoryApi } from '../hq/api-memory-control.js';
import { makeKey, run } from '../hq/harness.js';
import { quarryWithEnv, repoRoot } from '../support/cli.js';
import { freePort } from '../support/ports.js';

// The real `quarry` executable against HQ's real API over MemoryControl, an HqControl held in
// memory (titles say "memory control"), and against a real `quarry hq` (the last tests). The
// commands after a real push, on a real HQ, are in real-hq.test.ts.


const TOKEN = 'cli-test-token-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'quarry-hq-client-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

/** The real executable, with no inherited QUARRY_* and a QUARRY_HOME with no HQ in it unless given. */
function quarry(argv: string[], env: Record<string, string> = {}): Promise<Run> {
  return quarryWithEnv(argv, join(dir, 'no-home'), env);
}

const startHqApi = (t: { teardown(fn: () => Promise<void>): void }) => startMemoryApi(t, dir, TOKEN);

test('memory control: ps prints an aligned table, or JSON; an unknown stack exits 1 with HQ\'s message', async (t) => {
  const { hqEnv } = await startHqApi(t);
  const r = await quarry(['ps', 'demo'], hqEnv);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout,
    'CONTAINER     KIND     STATE    HEALTH   RESTARTS  LAST EXIT  RATE  RELEASE  SERVER  ADDRESS\n' +
    'demo.web.1    web      running  healthy  0         -          -     v2       local   127.0.0.1:49151\n' +
    'demo.web.2    web      running  healthy  0         -          -     v2       local   127.0.0.1:49152\n' +
    'demo.redis.1  service  running  -        0         -          -     v2       local   127.0.0.1:49151\n');
  const json = await quarry(['ps', '--json'], hqEnv);
  t.deepEqual((JSON.parse(json.stdout) as { container: string }[]).map((c) => c.container), ['demo.web.1', 'demo.web.2', 'demo.redis.1', 'empty.worker.1']);
  const missing = await quarry(['ps', 'ghost'], hqEnv);
  t.is(missing.code, 1);
  t.is(missing.stderr, "no stack 'ghost' on this HQ; push it first (git push ssh://quarry@HOST:PORT/ghost main)\n");
});

test('memory control: top --json prints HQ\'s snapshot; top without a TTY prints one table; with no STACK, several stacks want a name', async (t) => {
  const { hqEnv, control } = await startHqApi(t);
  const json = await quarry(['top', 'demo', '--json'], hqEnv);
  t.is(json.code, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), await control.top('demo'));
  const plain = await quarry(['top', 'demo'], hqEnv);
  t.is(plain.code, 0, plain.stderr);
  t.notRegex(plain.stdout, /\x1b\[/);
  t.regex(plain.stdout, /^web\.out -> parse\.in +push +100 +90\/100 +90% !$/m);
  const which = await quarry(['top'], hqEnv);
  t.is(which.code, 2);
  t.regex(which.stderr, /name the stack: HQ has demo, empty/);
});

test('memory control: scale prints progress as it streams and the release; a bad pair is a usage error; a failure exits 1', async (t) => {
  const { hqEnv } = await startHqApi(t);
  const r = await quarry(['scale', 'empty', 'worker=3'], hqEnv);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '-----> Scaling worker from 1 to 3\n       started empty.worker.3\nempty v2 released: scale worker=3\n');
  const usage = await quarry(['scale', 'empty', 'worker=-1'], hqEnv);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /'worker=-1' is not NAME=N/);
  const unknown = await quarry(['scale', 'empty', 'nope=1'], hqEnv);
  t.is(unknown.code, 1);
  t.is(unknown.stderr, "stack 'empty' has no node or element 'nope'\n");
  const crash = await quarry(['scale', 'empty', 'crash=1'], hqEnv);
  t.is(crash.code, 1);
  t.is(crash.stdout, '-----> Scaling crash\n');
  t.is(crash.stderr, "HQ failed: the engine fell over; HQ's log has the details\n");
});

test('memory control: logs prefix each line with its container; NAME and --tail narrow them', async (t) => {
  const { hqEnv } = await startHqApi(t);
  const r = await quarry(['logs', 'demo'], hqEnv);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'demo.web.1 | listening on 8080\ndemo.redis.1 | ready to accept connections\ndemo.web.1   | GET / 200\n');
  const tail = await quarry(['logs', 'demo', 'web', '--tail', '1'], hqEnv);
  t.is(tail.stdout, 'demo.web.1 | GET / 200\n');
});

test('memory control: logs -f follows until stopped, and stopping it stops the follow in HQ', async (t) => {
  const { control, hqEnv } = await startHqApi(t);
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_'))) as Record<string, string>;
  const child = spawn(process.execPath, [join(repoRoot, 'bin/quarry.js'), 'logs', 'demo', '-f'], { env: { ...base, ...hqEnv }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve) => {
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('following')) resolve();
    });
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.kill('SIGINT');
  // What the wait is for: the command ended on Ctrl-C, and so did the follow in HQ, because
  // its caller went away.
  t.deepEqual(await exited, [null, 'SIGINT']);
  t.deepEqual(await control.followStopped, { byCaller: true });
  t.is(control.openFollows, 0);
  t.deepEqual(control.calls, ['logs demo * follow=true tail=all']);
});

test('memory control: releases as a table; rollback by vN; a release that never was', async (t) => {
  const { hqEnv } = await startHqApi(t);
  const r = await quarry(['releases', 'demo'], hqEnv);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^RELEASE  WHEN {18}COMMIT {3}DESCRIPTION\n/);
  t.true(r.stdout.includes('v1       2026-01-01 12:00:00Z  1111111  push of 1a1a1a1\n'));
  const back = await quarry(['rollback', 'demo', 'v1'], hqEnv);
  t.is(back.code, 0, back.stderr);
  t.is(back.stdout, '-----> Rolling back demo to v1\ndemo v3 released: rollback to v1; http://demo.localhost:8080/\n');
  const never = await quarry(['rollback', 'demo', 'v9'], hqEnv);
  t.is(never.code, 1);
  t.is(never.stderr, "stack 'demo' has no release v9; see quarry releases demo\n");
  const json = await quarry(['releases', 'demo', '--json'], hqEnv);
  t.is((JSON.parse(json.stdout) as { version: number }[])[0]?.version, 3);
});

test('memory control: env lists names with values hidden; --reveal and get show them; set and unset make a release', async (t) => {
  const { hqEnv } = await startHqApi(t);
  const list = await quarry(['env', 'empty'], hqEnv);
  t.is(list.code, 0);
  t.is(list.stderr, 'empty has no env set with quarry env\n');

  const set = await quarry(['env', 'empty', 'set', 'DATABASE_URL=postgres://u:pw=1@db/x', 'MODE=fast'], hqEnv);
  t.is(set.code, 0, set.stderr);
  t.is(set.stdout, '-----> Setting env of empty\nempty v2 released: env set DATABASE_URL, set MODE\n');
  t.false(set.stdout.includes('pw=1'));

  const hidden = await quarry(['env', 'empty'], hqEnv);
  t.is(hidden.stdout, 'DATABASE_URL  ********\nMODE          ********\n');
  t.is(hidden.stderr, 'values hidden: show them with --reveal, or one with quarry env empty get KEY\n');
  t.deepEqual(JSON.parse((await quarry(['env', 'empty', '--json'], hqEnv)).stdout), ['DATABASE_URL', 'MODE']);
  t.is((await quarry(['env', 'empty', '--reveal'], hqEnv)).stdout, 'DATABASE_URL  postgres://u:pw=1@db/x\nMODE          fast\n');
  t.is((await quarry(['env', 'empty', 'get', 'DATABASE_URL'], hqEnv)).stdout, 'postgres://u:pw=1@db/x\n');
  const none = await quarry(['env', 'empty', 'get', 'NOPE'], hqEnv);
  t.is(none.code, 1);
  t.is(none.stderr, "empty has no env key 'NOPE' (see quarry env empty)\n");

  const unset = await quarry(['env', 'empty', 'unset', 'MODE', '--json'], hqEnv);
  t.is(unset.code, 0, unset.stderr);
  t.is((JSON.parse(unset.stdout) as { description: string }).description, 'env unset MODE');
  t.deepEqual(JSON.parse((await quarry(['env', 'empty', '--json', '--reveal'], hqEnv)).stdout), { DATABASE_URL: 'postgres://u:pw=1@db/x' });
  const bad = await quarry(['env', 'empty', 'set', '1X=y'], hqEnv);
  t.is(bad.code, 1);
  t.is(bad.stderr, "'1X' is not an env name\n");
});

test('memory control: servers prints an aligned table, or JSON equal to what HQ has', async (t) => {
  const { control, hqEnv } = await startHqApi(t);
  const r = await quarry(['servers'], hqEnv);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout,
    'ID   PROVIDER      ADDRESS   SIZE         MEMORY   USED    FREE    CONTAINERS  STATE   AGENT  FIREWALL  ROUTER\n' +
    'q-1  digitalocean  10.0.0.1  s-1vcpu-1gb  1024 MB  512 MB  512 MB  3           active  yes    on        yes\n' +
    'q-2  digitalocean  10.0.0.2  s-1vcpu-1gb  1024 MB  256 MB  768 MB  1           active  yes    on        no\n');
  const json = await quarry(['servers', '--json'], hqEnv);
  t.is(json.code, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), await control.servers());
  const usage = await quarry(['servers', 'frob'], hqEnv);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /^quarry servers: unknown servers command 'frob': use add, remove, drain or undrain\nusage: quarry servers /);
  const noId = await quarry(['servers', 'drain'], hqEnv);
  t.is(noId.code, 2);
  t.regex(noId.stderr, /^quarry servers: name the server to drain \(see quarry servers\)/);
  const misplaced = await quarry(['servers', 'undrain', 'q-1', '--remove'], hqEnv);
  t.is(misplaced.code, 2);
  t.regex(misplaced.stderr, /--remove goes with drain/);
  const drain = await quarry(['servers', 'drain', 'q-1', '--remove'], hqEnv);
  t.is(drain.code, 1, 'the memory control refuses; the CLI asked HQ, with --remove');
  t.true(control.calls.includes('drainServer q-1'), control.calls.join(', '));
  const noToken = await quarry(['servers'], { QUARRY_HQ: hqEnv.QUARRY_HQ! });
  t.is(noToken.code, 1);
  t.regex(noToken.stderr, /^HQ at http:\/\/127\.0\.0\.1:\d+ wants its API token\. /);
});

test('memory control: servers add and remove print progress as it streams, then the server; refusals exit 1 with HQ\'s message', async (t) => {
  const { control, hqEnv } = await startHqApi(t);
  const added = await quarry(['servers', 'add'], hqEnv);
  t.is(added.code, 0, added.stderr);
  t.is(added.stdout,
    '-----> Creating server q-3 (s-1vcpu-1gb)\n' +
    '       droplet q-3 is up at 10.0.0.3\n' +
    '       waiting for its agent\n' +
    '-----> Server q-3 joined the grid\n' +
    'server q-3 added: 10.0.0.3, digitalocean s-1vcpu-1gb, 1024 MB, active\n');
  const removed = await quarry(['servers', 'remove', 'q-3'], hqEnv);
  t.is(removed.code, 0, removed.stderr);
  t.is(removed.stdout, '-----> Removing server q-3\n       droplet q-3 destroyed\nserver q-3 removed\n');

  // --json: the progress on stderr, the server as JSON on stdout.
  const sized = await quarry(['servers', 'add', 's-2vcpu-2gb', '--json'], hqEnv);
  t.is(sized.code, 0, sized.stderr);
  t.true(sized.stderr.startsWith('-----> Creating server q-4 (s-2vcpu-2gb)\n'));
  t.deepEqual(JSON.parse(sized.stdout), (await control.servers()).find((s) => s.id === 'q-4'));

  const unknown = await quarry(['servers', 'remove', 'q-9'], hqEnv);
  t.is(unknown.code, 1);
  t.is(unknown.stdout, '');
  t.is(unknown.stderr, "no server 'q-9' in the grid; see quarry servers\n");
  const busy = await quarry(['servers', 'remove', 'q-1'], hqEnv);
  t.is(busy.code, 1);
  t.is(busy.stderr, "server 'q-1' still runs 3 container(s): only an empty server can be removed\n");
  const size = await quarry(['servers', 'add', 's-99'], hqEnv);
  t.is(size.code, 1);
  t.is(size.stderr, "digitalocean has no size 's-99'; sizes: s-1vcpu-1gb, s-2vcpu-2gb\n");
  const full = await quarry(['servers', 'add'], hqEnv);
  t.is(full.code, 1);
  t.is(full.stdout, '-----> Creating server q-5 (s-1vcpu-1gb)\n       droplet q-5 is up at 10.0.0.5\n       waiting for its agent\n       destroying q-5\n');
  t.is(full.stderr, 'the grid has its max of 3 blocks: raise max or remove a block before adding "q-5"\n');
  const usage = await quarry(['servers', 'remove'], hqEnv);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /name the server to remove/);
});

test('memory control: grid prints the drawing and the limits; with a stack its slices are marked; --json is the view', async (t) => {
  const { control, hqEnv } = await startHqApi(t);
  const all = await quarry(['grid'], hqEnv);
  t.is(all.code, 0, all.stderr);
  t.is(all.stdout, `${(await control.grid()).drawing}autosize off, min 1, max 3\n`);
  t.true(all.stdout.includes('q-1  1024 MB  used 512  free 512\n     demo.redis.1 128, demo.web.1 256, empty.worker.1 128\n'));

  const demo = await quarry(['grid', 'demo'], hqEnv);
  t.is(demo.code, 0, demo.stderr);
  const drawn = demo.stdout.split('\n');
  // q-1 holds 512 of 1024 MB in 8 rows: 4 filled, of which empty.worker.1's 128 MB is not demo's.
  t.deepEqual(drawn.slice(0, 10), [
    '+----+   +----+',
    '|    |   |    |',
    '|    |   |    |',
    '|    |   |    |',
    '|    |   |    |',
    '|====|   |    |',
    '|####|   |    |',
    '|####|   |####|',
    '|####|   |####|',
    '+----+   +----+',
  ]);
  t.true(demo.stdout.includes('     demo.redis.1 128, demo.web.1 256\n'));
  t.false(demo.stdout.includes('empty.worker.1'));
  t.true(demo.stdout.endsWith('autosize off, min 1, max 3\n'));

  const json = await quarry(['grid', 'demo', '--json'], hqEnv);
  t.is(json.code, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), await control.grid('demo'));

  const ghost = await quarry(['grid', 'ghost'], hqEnv);
  t.is(ghost.code, 1);
  t.is(ghost.stderr, "no stack 'ghost' on this HQ; push it first (git push ssh://quarry@HOST:PORT/ghost main)\n");
  const two = await quarry(['grid', 'demo', 'empty'], hqEnv);
  t.is(two.code, 2);
});

test('memory control: finding HQ: the local one from QUARRY_HOME, with its token; errors say what to do', async (t) => {
  const { api } = await startHqApi(t);
  const home = new HomeLayout(join(dir, 'local-home'));
  home.ensure(home.root);
  writeFileSync(home.hqInfo, JSON.stringify({ pid: process.pid, api: api.url, apiPort: api.port, sshPort: 1, routerPort: 2, push: 'ssh://quarry@127.0.0.1:1/' }));
  writeFileSync(home.token, `${TOKEN}\n`, { mode: 0o600 });
  const local = await quarry(['ps', 'empty', '--json'], { QUARRY_HOME: home.root });
  t.is(local.code, 0, local.stderr);

  // The local token goes only to the local HQ: another URL gets no token, and a 401 says how.
  const other = await quarry(['ps'], { QUARRY_HOME: home.root, QUARRY_HQ: api.url.replace('127.0.0.1', 'localhost') });
  t.is(other.code, 1);
  t.regex(other.stderr, /^HQ at http:\/\/localhost:\d+ wants its API token\. HQ's token is in the file 'token' in its home .*; give it with QUARRY_TOKEN or --token-file FILE\n$/);

  const wrongFile = join(dir, 'wrong-token');
  writeFileSync(wrongFile, 'wrong-token\n');
  const wrong = await quarry(['ps', '--hq', api.url, '--token-file', wrongFile], {});
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /^HQ at http:\/\/127\.0\.0\.1:\d+ refused the API token from --token-file \S+wrong-token\. /);

  const port = await freePort();
  const down = await quarry(['ps'], { QUARRY_HQ: `127.0.0.1:${port}`, QUARRY_TOKEN: TOKEN });
  t.is(down.code, 1);
  t.is(down.stderr, `cannot reach HQ at http://127.0.0.1:${port}: ECONNREFUSED; is 'quarry hq' running there? (HQ found by QUARRY_HQ)\n`);

  const nothing = await quarry(['ps'], { QUARRY_HOME: join(dir, 'empty-home') });
  t.is(nothing.code, 1);
  t.is(nothing.stderr, `no HQ to talk to: none runs with home ${join(dir, 'empty-home')} (no ${join(dir, 'empty-home', 'hq.json')}); start one with 'quarry hq', or name one with --hq URL or QUARRY_HQ\n`);
});

test('memory control: keys add with QUARRY_HQ goes through HQ\'s API into HQ\'s home, not the local one; bad keys exit 1 with a clear message', async (t) => {
  const { api, hqEnv, home } = await startHqApi(t);
  const keysDir = mkdtempSync(join(dir, 'keys-'));
  const local = new HomeLayout(join(keysDir, 'local-home'));
  const key = await makeKey(keysDir, 'dave');
  const pub = readFileSync(`${key}.pub`, 'utf8');
  const expected = (await run('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(' ')[1]!;

  const added = await quarry(['keys', 'add', `${key}.pub`], { ...hqEnv, QUARRY_HOME: local.root });
  t.is(added.code, 0, added.stderr);
  t.is(added.stdout, `added key ${expected} (dave@test) to HQ at ${api.url}: it may push now\n`);
  t.is(added.stderr, '');
  t.is(readFileSync(home.authorizedKeys, 'utf8'), pub, 'the key is in HQ\'s home');
  t.false(existsSync(local.authorizedKeys), 'and not in the local home');

  const again = await quarry(['keys', 'add', `${key}.pub`], { ...hqEnv, QUARRY_HOME: local.root });
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, `key ${expected} (dave@test) is already authorised by HQ at ${api.url}; nothing changed\n`);

  // --hq and --token-file work as for every command.
  const other = await makeKey(keysDir, 'erin');
  const tokenFile = join(keysDir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const flags = await quarry(['keys', 'add', `${other}.pub`, '--hq', api.url, '--token-file', tokenFile], { QUARRY_HOME: local.root });
  t.is(flags.code, 0, flags.stderr);
  t.regex(flags.stdout, /^added key SHA256:\S+ \(erin@test\) to HQ at /);
  t.is(readFileSync(home.authorizedKeys, 'utf8').trimEnd().split('\n').length, 2);

  // A file that is no public key: HQ's PublicKeyError, exit 1, the file named as given.
  writeFileSync(join(keysDir, 'notes.txt'), 'hello, this is not a key\n');
  const bad = await quarry(['keys', 'add', join(keysDir, 'notes.txt')], hqEnv);
  t.is(bad.code, 1);
  t.is(bad.stdout, '');
  t.regex(bad.stderr, new RegExp(`^${join(keysDir, 'notes.txt').replace(/[.]/g, '\\.')}: not an OpenSSH public key \\(.*\\); make one with ssh-keygen -t ed25519 and give the \\.pub file\\n$`));
  const missing = await quarry(['keys', 'add', join(keysDir, 'nope.pub')], hqEnv);
  t.is(missing.code, 1);
  t.is(missing.stderr, `${join(keysDir, 'nope.pub')}: cannot read it: ENOENT\n`);

  // The token is wanted as on every route.
  const noToken = await quarry(['keys', 'add', `${key}.pub`], { QUARRY_HQ: api.url, QUARRY_HOME: local.root });
  t.is(noToken.code, 1);
  t.regex(noToken.stderr, /^HQ at http:\/\/127\.0\.0\.1:\d+ wants its API token\. /);

  // A private key is refused before anything is sent: here HQ's address answers nothing.
  const port = await freePort();
  const secret = await quarry(['keys', 'add', key], { QUARRY_HQ: `127.0.0.1:${port}`, QUARRY_TOKEN: TOKEN });
  t.is(secret.code, 1);
  t.is(secret.stderr, `${key}: this is a private key; give its public half (the .pub file beside it). Keep the private key secret\n`);
  t.false(secret.stderr.includes(readFileSync(key, 'utf8').split('\n')[1]!.slice(0, 20)));
  t.is(readFileSync(home.authorizedKeys, 'utf8').trimEnd().split('\n').length, 2, 'nothing else reached HQ\'s home');
});

test('memory control: keys add goes through the API of the HQ that runs with the local home (hq.json), with its token', async (t) => {
  const { api, home: hqHome } = await startHqApi(t);
  const keysDir = mkdtempSync(join(dir, 'keys-'));
  const local = new HomeLayout(join(keysDir, 'home'));
  local.ensure(local.root);
  writeFileSync(local.hqInfo, JSON.stringify({ pid: process.pid, api: api.url, apiPort: api.port, sshPort: 1, routerPort: 2, push: 'ssh://quarry@127.0.0.1:1/' }));
  writeFileSync(local.token, `${TOKEN}\n`, { mode: 0o600 });
  const key = await makeKey(keysDir, 'fay');
  const r = await quarry(['keys', 'add', `${key}.pub`], { QUARRY_HOME: local.root });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^added key SHA256:\\S+ \\(fay@test\\) to HQ at ${api.url.replace(/[.]/g, '\\.')}: it may push now\\n$`));
  // The API's home here is its own folder, so the file shows the key went through the API.
  t.is(readFileSync(hqHome.authorizedKeys, 'utf8'), readFileSync(`${key}.pub`, 'utf8'));
  t.false(existsSync(local.authorizedKeys));
});

test('keys add with no HQ named or running writes the local home itself, and says so', async (t) => {
  const keysDir = mkdtempSync(join(dir, 'keys-'));
  const local = new HomeLayout(join(keysDir, 'home'));
  const key = await makeKey(keysDir, 'gus');
  const r = await quarry(['keys', 'add', `${key}.pub`], { QUARRY_HOME: local.root });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^added key SHA256:\S+ \(gus@test\): it may push now\n$/);
  t.is(r.stderr, `no HQ named by --hq or QUARRY_HQ, and none runs with home ${local.root}: this used ${local.authorizedKeys} directly, ` +
    'for an HQ on this home; for another HQ, name it with --hq URL or QUARRY_HQ\n');
  t.is(readFileSync(local.authorizedKeys, 'utf8'), readFileSync(`${key}.pub`, 'utf8'));
});

/** `quarry hq --config file://…` in a child process, resolved once it says it is ready. */
async function startQuarryHq(t: { teardown(fn: () => void): void }, home: HomeLayout) {
  const configPath = join(dir, `${home.root.split('/').pop()}.json`);
  writeFileSync(configPath, JSON.stringify({
    home: home.root, host: '127.0.0.1', sshPort: await freePort(), apiPort: await freePort(), routerPort: await freePort(), etcdPort: 0,
  }));
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_'))) as Record<string, string>;
  const child = spawn(process.execPath, [join(repoRoot, 'bin/quarry.js'), 'hq', '--config', `file://${configPath}`], {
    env: { ...base, QUARRY_HOME: home.root }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stderr: '' };
  child.stderr.on('data', (c: Buffer) => { output.stderr += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('ready')) resolve();
    });
    void exited.then((code) => reject(new Error(`quarry hq exited with ${code}:\n${output.stderr}`)));
  });
  const etcdPid = (JSON.parse(readFileSync(home.etcdPidFile, 'utf8')) as { pid: number }).pid;
  return { child, exited, output, etcdPid };
}

function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

test('quarry hq starts from a file:// config on free ports, answers local commands, and stops on SIGTERM leaving no etcd', async (t) => {
  const home = new HomeLayout(join(dir, 'hq-home'));
  const hq = await startQuarryHq(t, home);
  const token = readFileSync(home.token, 'utf8').trim();
  t.false(hq.output.stderr.includes(token), 'the token is not logged');

  const ps = await quarry(['ps'], { QUARRY_HOME: home.root });
  t.is(ps.code, 0, ps.stderr);
  t.is(ps.stderr, 'no containers run\n');

  // Small mode: this machine is the one server, and the grid cannot grow.
  const servers = await quarry(['servers', '--json'], { QUARRY_HOME: home.root });
  t.is(servers.code, 0, servers.stderr);
  t.like((JSON.parse(servers.stdout) as object[])[0], { id: 'local', provider: 'local', size: null, state: 'active' });
  t.is((JSON.parse(servers.stdout) as object[]).length, 1);
  const add = await quarry(['servers', 'add'], { QUARRY_HOME: home.root });
  t.is(add.code, 1);
  t.regex(add.stderr, /^this HQ runs in small mode: /);
  const grid = await quarry(['grid'], { QUARRY_HOME: home.root });
  t.is(grid.code, 0, grid.stderr);
  t.regex(grid.stdout, /\nlocal {2}\d+ MB {2}used \d+ {2}free \d+\n[^]*autosize off, min 1, max 1\n$/);

  hq.child.kill('SIGTERM');
  t.is(await hq.exited, 0, hq.output.stderr);
  t.true(gone(hq.etcdPid), 'its etcd is gone');
  t.throws(() => readFileSync(home.hqInfo), undefined, 'hq.json is removed');
});

test('quarry hq killed with SIGKILL takes its etcd with it, and starts again on the same home', async (t) => {
  const home = new HomeLayout(join(dir, 'killed-home'));
  const first = await startQuarryHq(t, home);
  first.child.kill('SIGKILL');
  await first.exited;
  const deadline = Date.now() + 20_000;
  while (!gone(first.etcdPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.true(gone(first.etcdPid), 'the kernel ended its etcd');

  // Its lock, hq.json and hook socket are left behind; the next HQ takes them over.
  const second = await startQuarryHq(t, home);
  t.not(second.etcdPid, first.etcdPid);
  const ps = await quarry(['ps', '--json'], { QUARRY_HOME: home.root });
  t.is(ps.code, 0, ps.stderr);
  t.deepEqual(JSON.parse(ps.stdout), []);
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0, second.output.stderr);
});

test('quarry hq with a config it cannot use stops at once naming the URL and the key', async (t) => {
  const configPath = join(dir, 'bad-hq.json');
  writeFileSync(configPath, JSON.stringify({ sshPort: 'twenty-two' }));
  const r = await quarry(['hq', '--config', `file://${configPath}`]);
  t.is(r.code, 1);
  t.is(r.stderr, `config file://${configPath}: key "sshPort": must be an integer from 0 to 65535, got "twenty-two"\n`);
});
