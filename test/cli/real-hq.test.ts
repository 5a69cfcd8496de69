// The real `quarry` executable against a real HQ: `quarry hq` itself in a child process (its
// own etcd, its router, the part that runs stacks on the local docker engine, the git push
// path and the HTTP API), one push of a small stack made here, and then `quarry keys add`,
// `ps`, `releases`, `env`, `scale` and `logs` as a user on another machine would run them:
// QUARRY_HQ and QUARRY_TOKEN set, and a QUARRY_HOME that is not HQ's.
//
// One HQ and one push for the whole file (CI time): the tests are serial and each builds on
// the state the one before left (v1 the push, v2 an env change, v3 a scale).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import type { HqInfo, LogLine, PsRow, ReleaseInfo } from '../../hq/index.js';
import { listContainers, removeContainer } from '../../launcher/index.js';
import { commitAll, gitEnv, makeKey, removeStackImages, run, tempDir, uniqueStack, type Ran } from '../hq/harness.js';
import { repoRoot } from '../support/cli.js';
import { docker } from '../support/docker.js';
import { httpGet } from '../support/http.js';
import { freePort } from '../support/ports.js';

const dir = tempDir('quarry-real-hq-');
const hqHome = new HomeLayout(join(dir, 'hq-home'));
/** The commands' QUARRY_HOME: a laptop's, with nothing of HQ's in it. */
const laptop = new HomeLayout(join(dir, 'laptop-home'));
const stack = uniqueStack('realhq');
const domain = `${stack}.localhost`;

let hq: { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } | undefined;
let info: HqInfo;
let token: string;
/** QUARRY_HQ, QUARRY_TOKEN and the laptop's QUARRY_HOME. */
let env: Record<string, string>;
let repo: string;
let commit: string;
let key: string;

/** The real `quarry` executable, with only the QUARRY_* variables given. */
function quarry(argv: string[], extra: Record<string, string> = env, cwd = dir): Promise<Ran> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
  return run(process.execPath, [join(repoRoot, 'bin/quarry.js'), ...argv], { cwd, env: { ...base, ...extra } });
}

/** GET through HQ's router, as the stack's domain. */
function viaRouter(path: string): Promise<{ status: number; body: string }> {
  return httpGet(`http://127.0.0.1:${info.routerPort}${path}`, 5000, { Host: domain });
}

async function eventually<T>(get: () => Promise<T>, ok: (value: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    try {
      last = await get();
      if (ok(last)) return last;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) return last as T;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A one-node stack: a web node that logs how it starts and every request but health checks. */
async function smallStack(): Promise<string> {
  const folder = join(dir, 'stack');
  mkdirSync(join(folder, 'web'), { recursive: true });
  writeFileSync(join(folder, 'web', 'Dockerfile'), 'FROM quarry/node:20\nCOPY server.js /app/server.js\n');
  writeFileSync(join(folder, 'web', 'server.js'), [
    "const http = require('node:http');",
    'const port = Number(process.env.PORT);',
    'http.createServer((req, res) => {',
    "  if (req.url === '/healthz') return res.end('ok');",
    // An app that tries to drive the operator's terminal: a colour, and a window title (OSC).
    "  if (req.url === '/escapes') { console.log('paint \\x1b[31mred\\x1b[0m \\x1b]0;owned\\x07 done'); return res.end('painted'); }",
    '  console.log(`member ${process.env.QUARRY_MEMBER} ${req.method} ${req.url}`);',
    "  res.end(`hello ${process.env.GREETING} from ${process.env.QUARRY_MEMBER}`);",
    '}).listen(port, () => console.log(`listening on ${port} as member ${process.env.QUARRY_MEMBER}`));',
    "process.on('SIGTERM', () => process.exit(0));",
  ].join('\n'));
  writeFileSync(join(folder, 'quarry.yml'), [
    'version: 1',
    'env:',
    '  GREETING: world',
    'nodes:',
    '  web:',
    '    type: web',
    '    build: ./web',
    '    command: [node, /app/server.js]',
    '    port: 8080',
    `    domains: [${domain}]`,
    '    health: /healthz',
    '    memory: 64',
    '',
  ].join('\n'));
  commit = await commitAll(folder, 'a small stack', true);
  return folder;
}

function push(withKey: string): Promise<Ran> {
  return run('git', ['push', '--porcelain', `ssh://quarry@127.0.0.1:${info.sshPort}/${stack}`, 'main'], { cwd: repo, env: gitEnv(withKey, info.sshPort) });
}

test.before(async () => {
  const configPath = join(dir, 'hq.json');
  writeFileSync(configPath, JSON.stringify({
    home: hqHome.root, host: '127.0.0.1', apiHost: '127.0.0.1', sshPort: await freePort(), apiPort: await freePort(), routerPort: await freePort(), etcdPort: 0,
  }));
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
  const child = spawn(process.execPath, [join(repoRoot, 'bin/quarry.js'), 'hq', '--config', `file://${configPath}`], {
    env: { ...base, QUARRY_HOME: hqHome.root }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  hq = { child, exited, stderr: () => stderr };
  await new Promise<void>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('ready')) resolve();
    });
    void exited.then((code) => reject(new Error(`quarry hq exited with ${code}:\n${stderr}`)));
  });
  info = JSON.parse(readFileSync(hqHome.hqInfo, 'utf8')) as HqInfo;
  token = readFileSync(hqHome.token, 'utf8').trim();
  env = { QUARRY_HQ: info.api, QUARRY_TOKEN: token, QUARRY_HOME: laptop.root };
  repo = await smallStack();
  key = await makeKey(dir, 'pusher');
});

test.after.always(async () => {
  if (hq) {
    hq.child.kill('SIGTERM');
    const stopped = await Promise.race([hq.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
    if (stopped === 'timeout') hq.child.kill('SIGKILL');
  }
  // HQ's containers outlive it by design (tasks survive HQ's death): remove the stack's.
  for (const c of await listContainers(docker, stack)) await removeContainer(docker, c.id, 1);
  await docker.getNetwork(`quarry-${stack}`).remove().catch(() => undefined);
  await removeStackImages(stack);
  rmSync(dir, { recursive: true, force: true });
});

test.serial('keys add goes through the API of an HQ whose home is not QUARRY_HOME; a push with that key is then accepted; a bad key file exits 1', async (t) => {
  const refused = await push(key);
  t.not(refused.code, 0, 'a key HQ does not know cannot push');
  t.regex(refused.stderr, /Permission denied \(publickey\)/);

  writeFileSync(join(dir, 'notes.txt'), 'hello, this is not a key\n');
  const bad = await quarry(['keys', 'add', 'notes.txt']);
  t.is(bad.code, 1);
  t.is(bad.stdout, '');
  t.regex(bad.stderr, /^notes\.txt: not an OpenSSH public key \(.*\); make one with ssh-keygen -t ed25519 and give the \.pub file\n$/);

  const expected = (await run('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(' ')[1]!;
  const added = await quarry(['keys', 'add', 'pusher.pub']);
  t.is(added.code, 0, added.stderr);
  t.is(added.stdout, `added key ${expected} (pusher@test) to HQ at ${info.api}: it may push now\n`);
  t.true(readFileSync(hqHome.authorizedKeys, 'utf8').includes(readFileSync(`${key}.pub`, 'utf8').split(' ')[1]!), 'the key is in HQ\'s home');
  t.false(existsSync(laptop.authorizedKeys), 'and not in the local QUARRY_HOME');

  const pushed = await push(key);
  t.is(pushed.code, 0, pushed.stderr);
  // git pads each remote: line with blanks, to clear what its progress wrote.
  t.regex(pushed.stderr, new RegExp(`^remote: -----> ${stack} v1 is live: http://${domain.replace(/\./g, '\\.')}:${info.routerPort}/ *$`, 'm'));
  const served = await eventually(() => viaRouter('/'), (r) => r.status === 200);
  t.is(served.body, 'hello world from 0');
});

test.serial('ps: the pushed container, running and healthy, from v1; as a table and as JSON', async (t) => {
  const json = await quarry(['ps', stack, '--json']);
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as PsRow[];
  const running = await listContainers(docker, stack);
  t.deepEqual(rows.map((r) => r.container), running.map((c) => c.name), 'what docker runs');
  t.is(rows.length, 1);
  t.like(rows[0], { stack, name: 'web', kind: 'web', state: 'running', health: 'healthy', release: 'v1', server: 'local', restarts: 0 });
  t.is(rows[0]!.lastExit, undefined, 'it never died');

  const table = await quarry(['ps', stack]);
  t.is(table.code, 0, table.stderr);
  const [header, row, ...more] = table.stdout.split('\n');
  t.regex(header!, /^CONTAINER +KIND +STATE +HEALTH +RESTARTS +LAST EXIT +RATE +RELEASE +SERVER +ADDRESS$/);
  t.is(row!.split(/ {2,}/).slice(0, 9).join(' '), `${rows[0]!.container} web running healthy 0 - - v1 local`);
  t.deepEqual(more, ['']);
});

test.serial('releases: v1, the push of the commit pushed', async (t) => {
  const table = await quarry(['releases', stack]);
  t.is(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^RELEASE +WHEN +COMMIT +DESCRIPTION$/);
  t.regex(lines[1]!, new RegExp(`^v1 +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ +${commit.slice(0, 7)} +push of ${commit.slice(0, 7)}$`));
  t.is(lines.length, 2);
  const json = JSON.parse((await quarry(['releases', stack, '--json'])).stdout) as ReleaseInfo[];
  t.like(json[0], { stack, version: 1, reason: 'push', commit, scale: { web: 1 } });
  t.deepEqual(json[0]?.envKeys, []);
  t.deepEqual(json[0]?.urls, [`http://${domain}:${info.routerPort}/`]);
});

test.serial('env: none set at first; set makes v2, which the container runs with; the value is hidden unless asked', async (t) => {
  const none = await quarry(['env', stack]);
  t.is(none.code, 0, none.stderr);
  t.is(none.stderr, `${stack} has no env set with quarry env\n`);

  const set = await quarry(['env', stack, 'set', 'GREETING=quarry']);
  t.is(set.code, 0, set.stderr);
  t.true(set.stdout.startsWith('-----> '), set.stdout);
  t.true(set.stdout.endsWith(`${stack} v2 released: env set GREETING; http://${domain}:${info.routerPort}/\n`), set.stdout);

  t.is((await quarry(['env', stack])).stdout, 'GREETING  ********\n');
  t.is((await quarry(['env', stack, 'get', 'GREETING'])).stdout, 'quarry\n');
  t.deepEqual(JSON.parse((await quarry(['env', stack, '--json', '--reveal'])).stdout), { GREETING: 'quarry' });
  // The new container has the value (quarry env overrides quarry.yml's env).
  const served = await eventually(() => viaRouter('/'), (r) => r.body === 'hello quarry from 0');
  t.is(served.body, 'hello quarry from 0');
  const rows = JSON.parse((await quarry(['ps', stack, '--json'])).stdout) as PsRow[];
  t.deepEqual(rows.map((r) => r.release), ['v2']);
});

test.serial('scale: web=2 makes v3; ps lists two containers, and the router reaches both', async (t) => {
  const scaled = await quarry(['scale', stack, 'web=2']);
  t.is(scaled.code, 0, scaled.stderr);
  t.true(scaled.stdout.endsWith(`${stack} v3 released: scale web=2; http://${domain}:${info.routerPort}/\n`), scaled.stdout);

  const rows = JSON.parse((await quarry(['ps', stack, '--json'])).stdout) as PsRow[];
  t.is(rows.length, 2);
  t.true(rows.every((r) => r.name === 'web' && r.state === 'running' && r.health === 'healthy'), JSON.stringify(rows));
  t.deepEqual(rows.map((r) => r.container), (await listContainers(docker, stack)).map((c) => c.name));

  const seen = new Set<string>();
  await eventually(async () => seen.add((await viaRouter('/')).body), () => seen.size === 2);
  t.deepEqual([...seen].sort(), ['hello quarry from 0', 'hello quarry from 1']);

  const releases = JSON.parse((await quarry(['releases', stack, '--json'])).stdout) as ReleaseInfo[];
  t.deepEqual(releases.map((r) => [r.version, r.reason, r.description]), [[3, 'scale', 'scale web=2'], [2, 'env', 'env set GREETING'], [1, 'push', `push of ${commit.slice(0, 7)}`]]);
});

test.serial('logs: the containers\' real output, by name, --tail and --json, escape sequences shown escaped; logs -f shows new lines as they come and stops on Ctrl-C', async (t) => {
  t.is((await viaRouter('/escapes')).body, 'painted');
  await viaRouter('/before-logs');
  const rows = JSON.parse((await quarry(['ps', stack, '--json'])).stdout) as PsRow[];
  const names = rows.map((r) => r.container);

  const all = await quarry(['logs', stack, 'web']);
  t.is(all.code, 0, all.stderr);
  const lines = all.stdout.trimEnd().split('\n');
  // Each container's own start line, with its member number (0 and 1, one each).
  const members = names.map((name) => lines
    .map((l) => new RegExp(`^${name.replace(/\./g, '\\.')} *\\| listening on 8080 as member (\\d+)$`).exec(l)?.[1])
    .find((m) => m !== undefined));
  t.deepEqual([...members].sort(), ['0', '1'], all.stdout);
  t.true(lines.some((l) => /\| member [01] GET \/before-logs$/.test(l)), all.stdout);

  // What the container wrote to drive a terminal is shown escaped, and nothing of it acts;
  // --json keeps it exact (JSON escapes it already).
  t.true(lines.some((l) => l.endsWith('| paint \\x1b[31mred\\x1b[0m \\x1b]0;owned\\x07 done')), all.stdout);
  t.false(all.stdout.includes('\x1b'), 'no ESC reaches the terminal');
  const json = await quarry(['logs', stack, 'web', '--json']);
  t.true(json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as LogLine).some((l) => l.text === 'paint \x1b[31mred\x1b[0m \x1b]0;owned\x07 done'), json.stdout);

  const tail = await quarry(['logs', stack, '--tail', '1', '--json']);
  t.is(tail.code, 0, tail.stderr);
  const tailed = tail.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as LogLine);
  t.deepEqual(tailed.map((l) => l.container).sort(), [...names].sort(), 'one line from each container');
  t.true(tailed.every((l) => l.stream === 'stdout' && !Number.isNaN(Date.parse(l.time))));

  // Follow: a request made after it started shows up, then Ctrl-C ends it.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
  const follow = spawn(process.execPath, [join(repoRoot, 'bin/quarry.js'), 'logs', stack, '-f'], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { follow.kill('SIGKILL'); });
  const exited = once(follow, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let out = '';
  const waitFor = (text: string) => new Promise<boolean>((resolve) => {
    const check = () => {
      if (out.includes(text)) {
        follow.stdout!.off('data', check);
        clearTimeout(timer);
        resolve(true);
      }
    };
    const timer = setTimeout(() => { follow.stdout!.off('data', check); resolve(false); }, 30_000);
    follow.stdout!.on('data', check);
    check();
  });
  follow.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  t.true(await waitFor('/before-logs'), `logs -f printed what was there: ${out}`);
  const path = `/while-following-${Date.now()}`;
  t.is((await viaRouter(path)).status, 200);
  t.true(await waitFor(`GET ${path}`), `logs -f printed a line written after it started: ${out}`);
  follow.kill('SIGINT');
  t.deepEqual(await exited, [null, 'SIGINT'], 'Ctrl-C ends it');

  // HQ goes on serving commands after the follow's caller went away.
  const after = await quarry(['ps', stack]);
  t.is(after.code, 0, after.stderr);
  t.false(hq!.stderr().includes(token), 'HQ never logs its token');
});
