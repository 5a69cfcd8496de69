// Secrets at rest (issue 20): after a real push with env values (one in quarry.yml, one set
// with `quarry env`), every file under HQ's home that holds one is 0600 in 0700 folders (HQ's
// own etcd's data among them), the pushed code excepted, which is private by its folders; no
// container shows a value anywhere but its env (the `quarry.digest` label is keyed with HQ's
// digest key); an old home with looser modes is made private at HQ's start, said once.
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import test from 'ava';
import Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import { HomeLayout } from '../../home/index.js';
import { hqConfigOf } from '../../hq/config.js';
import { DigestKeyFileError } from '../../hq/errors.js';
import { startControl, startDaemon, startOwnEtcd, type ControlHandle, type MakeControl, type OwnEtcd } from '../../hq/index.js';
import { loadOrCreateDigestKey } from '../../hq/keys/index.js';
import { LABELS, listContainers } from '../../launcher/index.js';
import { desiredUnits, PREVIEW_DIGEST_KEY, withEnv } from '../../plan/index.js';
import { MemoryControl } from './api-memory-control.js';
import { commitAll, docsearchRepo, push, removeStacks, startTestHq, uniqueStack, type TestHq } from './harness.js';

const docker = new Docker();
const noProgress = { step() {}, info() {}, error() {} };
const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Every regular file under `dir` (links are not followed: `src` is one). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) out.push(...filesUnder(path));
    else if (stat.isFile()) out.push(path);
  }
  return out;
}

/** The folders from `root` down to the one holding `file`, `root` included. */
function foldersOf(root: string, file: string): string[] {
  const out: string[] = [];
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    out.push(dir);
    if (dir === root || dir === dirname(dir)) return out;
  }
}

let t: TestHq | undefined;
let etcd: OwnEtcd | undefined;
let client: Etcd3 | undefined;
let control: ControlHandle | undefined;
const logged: string[] = [];
const stacks: string[] = [];

test.after.always(async () => {
  await removeStacks(stacks);
  await control?.close();
  client?.close();
  await etcd?.stop();
  await t?.close();
});

test('after a push with env, every file of HQ\'s home holding a value is 0600 in 0700 folders; containers show it in their env only', async (tt) => {
  // HQ with its own etcd under its home (as `quarry hq` runs it), and the part that runs stacks.
  let handle: ControlHandle | undefined;
  t = await startTestHq({ onRelease: (...args) => handle!.onRelease(...args) });
  etcd = await startOwnEtcd({ home: t.home, port: 0 });
  client = new Etcd3({ hosts: etcd.endpoint });
  handle = await startControl({ home: t.home, etcd: client, docker, log: (line) => logged.push(line), drainMs: 300 });
  control = handle;

  const pushed = `pushed-${randomBytes(8).toString('hex')}`;
  const set = `set-${randomBytes(8).toString('hex')}`;
  const stack = uniqueStack('secrets');
  stacks.push(stack);
  const repo = await docsearchRepo(t.dir);
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8')
    .replace('docsearch.localhost', `${stack}.localhost`)
    .replace('  LOG_LEVEL: info', `  LOG_LEVEL: info\n  PUSHED_SECRET: ${pushed}`));
  await commitAll(repo, 'an env value in quarry.yml');
  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  const released = await control.setEnv(stack, { API_SECRET: set }, [], noProgress);
  tt.is(released.version, 2);

  const home = t.home;
  const holding = filesUnder(home.root).filter((f) => {
    const bytes = readFileSync(f);
    return bytes.includes(pushed) || bytes.includes(set);
  });
  const rel = holding.map((f) => relative(home.root, f));
  // Where the values are: the env file, both releases and their plans, HQ's etcd, and the pushed quarry.yml.
  for (const expected of [
    `stacks/${stack}/env/API_SECRET`,
    `stacks/${stack}/build/v1/release.json`, `stacks/${stack}/build/v1/plan.json`,
    `stacks/${stack}/build/v2/release.json`, `stacks/${stack}/build/v2/plan.json`,
  ]) tt.true(rel.includes(expected), `${expected} holds a value (found: ${rel.join(', ')})`);
  tt.true(rel.some((f) => f.startsWith('etcd/')), 'HQ\'s own etcd holds the env');

  const code = (f: string) => /^stacks\/[^/]+\/(repo\.git|\.src)\//.test(relative(home.root, f));
  for (const file of holding) {
    const name = relative(home.root, file);
    if (code(file)) {
      // The pushed code keeps the modes git gives it (docker builds copy them into images);
      // only the value committed to quarry.yml is there, and the stack's folder keeps others out.
      tt.false(readFileSync(file).includes(set), `${name}: a value set with quarry env is never in the code`);
      tt.is(modeOf(home.stackDir(stack)), 0o700, `${name}: inside the stack's 0700 folder`);
      tt.is(modeOf(home.root), 0o700);
      continue;
    }
    tt.is(modeOf(file), 0o600, `${name} is 0600`);
    for (const folder of foldersOf(home.root, file)) tt.is(modeOf(folder), 0o700, `${relative(home.root, folder) || 'the home'} (holding ${name}) is 0700`);
  }
  tt.is(modeOf(home.digestKey), 0o600);
  tt.is(modeOf(home.keysDir), 0o700);

  // Containers: the values in their env (nodes and elements; a service gets none), nowhere else.
  const key = readFileSync(home.digestKey, 'utf8').trim();
  tt.regex(key, /^[0-9a-f]{64}$/);
  const last = JSON.parse(readFileSync(join(home.stackBuild(stack), 'v2', 'release.json'), 'utf8'));
  const units = new Map(desiredUnits(withEnv(last.spec, last.env), { digestKey: key }).map((u) => [u.name, u]));
  const preview = new Map(desiredUnits(withEnv(last.spec, last.env), { digestKey: PREVIEW_DIGEST_KEY }).map((u) => [u.name, u]));
  const containers = await listContainers(docker, stack);
  tt.true(containers.length >= 5, containers.map((c) => c.name).join(', '));
  for (const c of containers) {
    const info = await docker.getContainer(c.id).inspect();
    const env = info.Config.Env ?? [];
    const service = c.kind === 'service';
    tt.is(env.includes(`API_SECRET=${set}`), !service, `${c.name}: API_SECRET in its env`);
    tt.is(env.includes(`PUSHED_SECRET=${pushed}`), !service, `${c.name}: PUSHED_SECRET in its env`);
    const rest = JSON.stringify({ ...info, Config: { ...info.Config, Env: [] } });
    tt.false(rest.includes(set) || rest.includes(pushed), `${c.name}: no value in its labels, arguments or anything else docker shows`);
    // Its label is the digest under HQ's key, not one anyone could make.
    const label = info.Config.Labels?.[LABELS.digest];
    tt.is(label, units.get(c.unit)?.digest, `${c.name}: quarry.digest is HQ's keyed digest`);
    if (!service) tt.not(label, preview.get(c.unit)?.digest);
  }
  for (const line of logged) tt.false(line.includes(set) || line.includes(pushed), `HQ's log line holds a value: ${line}`);
});

test('the digest key: made once, 0600 in the 0700 keys folder; a loosened one is tightened; anything else is refused', (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-digest-key-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const home = new HomeLayout(join(dir, 'home'));
  const key = loadOrCreateDigestKey(home);
  tt.regex(key, /^[0-9a-f]{64}$/);
  tt.is(modeOf(home.digestKey), 0o600);
  tt.is(modeOf(home.keysDir), 0o700);
  tt.is(loadOrCreateDigestKey(home), key, 'the same from then on');
  chmodSync(home.digestKey, 0o644);
  tt.is(loadOrCreateDigestKey(home), key);
  tt.is(modeOf(home.digestKey), 0o600);
  writeFileSync(home.digestKey, 'not a key\n');
  tt.throws(() => loadOrCreateDigestKey(home), { instanceOf: DigestKeyFileError, message: /delete it and start HQ again .*redeploys every node and element once/ });
});

test('HQ\'s start makes an old home with looser modes private, and says so once', async (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-old-home-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const home = new HomeLayout(join(dir, 'home'));
  // A home as an older quarry (or a developer's umask) left it.
  const env = home.stackEnv('shop');
  mkdirSync(env, { recursive: true, mode: 0o755 });
  writeFileSync(join(env, 'PIN'), '1234', { mode: 0o644 });
  mkdirSync(join(home.stackBuild('shop'), 'v1'), { recursive: true, mode: 0o755 });
  writeFileSync(join(home.stackBuild('shop'), 'v1', 'plan.json'), '[]\n', { mode: 0o644 });
  for (const d of [home.root, home.stacksDir, home.stackDir('shop'), env, home.stackBuild('shop'), join(home.stackBuild('shop'), 'v1')]) chmodSync(d, 0o755);
  chmodSync(join(env, 'PIN'), 0o644);
  chmodSync(join(home.stackBuild('shop'), 'v1', 'plan.json'), 0o644);

  const config = hqConfigOf({ home: home.root, host: '127.0.0.1', sshPort: 0, apiHost: '127.0.0.1', apiPort: 0, routerPort: 0, etcd: undefined, etcdPort: 0, grid: undefined, locknet: false });
  const memory: MakeControl = async () => Object.assign(new MemoryControl(), { onRelease: async () => undefined, close: async () => undefined });
  const start = async () => {
    const lines: string[] = [];
    const daemon = await startDaemon(config, memory, { log: (l) => lines.push(l) });
    await daemon.close();
    return lines.filter((l) => /made them private/.test(l));
  };
  const first = await start();
  tt.is(first.length, 1, 'said once');
  tt.regex(first[0]!, /others could read 2 file\(s\) and 6 folder\(s\) of HQ's state .*files 0600, folders 0700/);
  tt.is(modeOf(join(env, 'PIN')), 0o600);
  tt.is(modeOf(join(home.stackBuild('shop'), 'v1', 'plan.json')), 0o600);
  for (const d of [home.root, home.stacksDir, home.stackDir('shop'), env, home.etcdDir]) tt.is(modeOf(d), 0o700, d);
  tt.deepEqual(await start(), [], 'nothing to say the next time');
});
