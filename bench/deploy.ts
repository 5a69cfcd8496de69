/**
 * bench:deploy — how long a push takes to serve, and what it moves, in two parts of one run.
 *
 * Small mode (HQ and the stack on this machine's engine): the time from `git push` of a
 * one-line change of the example's web node to the new version serving through the router
 * (warm cache: every other image is built), against the same docker work done directly in the
 * same run: build the changed image, run the same number of containers, wait until they answer
 * their health path. Rounds alternate; medians count. DEPLOY_SMALL=0 skips the rounds; its
 * first push still runs, since it fills the build cache for the grid part.
 *
 * The grid part (issue 16; HQ in this process on grids of docker-provider servers, containers
 * with their own dockerd, as bench:heal runs it), each grid fresh (its servers hold the agent
 * and no image of the stack), one after the other:
 *
 *   registry  two servers, images by layers from HQ's registry: the first push of the example
 *             (reservations that need both servers, as test/hq/grid.test.ts's) → serving
 *             (firstPushMs), then a one-line change of the web node → the new version serving
 *             (changePushMs) and the blob bytes the registry sent each server meanwhile
 *             (changeBytesPerServer: the most any one server got, from the registry's log);
 *   whole     the same on two fresh servers with grid.registry false (docker save | docker
 *             load): wholeFirstPushMs, wholeChangePushMs and wholeImageBytes (the most any one
 *             server was sent during the change, from the push's `loaded … (X MB …)` lines;
 *             wholeImageBytesTotal: all servers);
 *   one       one server, registry, the example as it is (it fits): onePushMs, and
 *             firstPushRatio = firstPushMs / onePushMs.
 *
 * Every first push pushes the same commit the small part pushed first, so no first push builds
 * anything: the figures compare moving images and starting containers, not builds. Each change
 * is a fresh one-line edit, so each builds the web image's top layer. Goals (issue 16): a change
 * moves ≤ 1 MB into each server and serves in ≤ 5 s; firstPushRatio ≤ 1.5.
 *
 * Progress on stderr; last stdout line: JSON. DEPLOY_ROUNDS (small mode, default 3),
 * DEPLOY_GRID_ROUNDS (changes per grid, default 1; medians), DEPLOY_GRID=0 skips the grid part,
 * BENCH_DEPLOY_LOG=FILE keeps HQ's logs of the grid part.
 *
 *   DEPLOY_ROUNDS=3 npm run bench:deploy
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import { HomeLayout } from '../home/index.js';
import {
  addAuthorizedKey, startControl, startDaemon, startHq, startOwnEtcd, type ControlHandle, type Daemon, type DaemonContext, type HqConfig,
} from '../hq/index.js';
import { buildImage, listContainers, removeContainer, startContainer, waitHealthy } from '../launcher/index.js';
import { startRouter } from '../router/index.js';
import {
  benchGitEnv, exampleCopy, httpGet, median, removeFleet, removeStackContainers, removeStackImages, sleep, until,
} from './example.js';

const ROUNDS = Number(process.env.DEPLOY_ROUNDS ?? 3);
const SMALL = process.env.DEPLOY_SMALL !== '0';
const GRID = process.env.DEPLOY_GRID !== '0';
const GRID_ROUNDS = Number(process.env.DEPLOY_GRID_ROUNDS ?? 1);
/** One stack name throughout: the images' tags (content digests under it) are the same in every part. */
const STACK = `benchdeploy-${process.pid}`;
const DOMAIN = `${STACK}.localhost`;
const MB = 1024 * 1024;
const docker = new Docker();
const dir = mkdtempSync(join(tmpdir(), 'quarry-bench-deploy-'));
const started = Date.now();
const say = (line: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const git = (args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) => execFileSync('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
/**
 * `git push`, which must not block this process's event loop: HQ, answering it, runs here too.
 * Resolves with git's stderr (HQ's messages), each line with the ms since the push began.
 */
const gitPush = (url: string, cwd: string, env: NodeJS.ProcessEnv) => new Promise<string>((resolve, reject) => {
  const t0 = performance.now();
  const child = spawn('git', ['push', url, 'main'], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split(/\r?\n|\r/);
    partial = lines.pop()!;
    const at = ((performance.now() - t0) / 1000).toFixed(2).padStart(6);
    for (const line of lines) if (line.trim()) text += `${at} s ${line}\n`;
  });
  child.on('error', reject);
  child.on('close', (code) => {
    if (partial.trim()) text += `${((performance.now() - t0) / 1000).toFixed(2).padStart(6)} s ${partial}\n`;
    if (code === 0) resolve(text);
    else reject(new Error(`git push failed (exit ${code}):\n${text}`));
  });
});
const keyFile = join(dir, 'key');
const env = benchGitEnv(keyFile);

/** The example at `repo` (a git repository with one commit), and how to change its web node's /healthz answer. */
function exampleRepo(repo: string, edit?: (yml: string) => string, editTopology?: (yml: string) => string): (v: string) => void {
  exampleCopy(repo, DOMAIN, edit, editTopology);
  const server = join(repo, 'web', 'server.js');
  const original = readFileSync(server, 'utf8');
  const version = (v: string) => writeFileSync(server, original.replace("res.end('ok')", `res.end('ok ${v}')`));
  version('v0');
  git(['init', '-q', '-b', 'main'], repo, env);
  git(['add', '-A'], repo, env);
  git(['commit', '-q', '-m', 'v0'], repo, env);
  return version;
}

/**
 * Pushes and polls the router every 20 ms until /healthz answers `ok <v>`: ms from the push's
 * start until then (servingMs) and until git returned (pushMs), and git's stderr.
 */
async function pushUntilServing(url: string, repo: string, routerPort: number, v: string): Promise<{ servingMs: number; pushMs: number; stderr: string }> {
  const t0 = performance.now();
  let failed: unknown;
  let pushMs = 0;
  const pushing = gitPush(url, repo, env).then((stderr) => { pushMs = performance.now() - t0; return stderr; }, (err: unknown) => { failed = err; return ''; });
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (failed) throw failed;
    if ((await httpGet(`http://127.0.0.1:${routerPort}/healthz`, { host: DOMAIN })).body === `ok ${v}`) break;
    if (Date.now() > deadline) throw new Error(`ok ${v} not served through the router within 300 s of the push`);
    await sleep(20);
  }
  const servingMs = performance.now() - t0;
  const stderr = await pushing;
  if (failed) throw failed;
  return { servingMs, pushMs, stderr };
}

interface SmallFigures { pushToServingSec: number; dockerWorkSec: number; ratio: number; rounds: number }

/** Small mode: the first push (every image built, or taken from the cache), then ROUNDS rounds when SMALL. */
async function smallMode(): Promise<SmallFigures | null> {
  const home = new HomeLayout(join(dir, 'small'));
  const etcdServer = await startOwnEtcd({ home, port: 0 });
  const etcd = new Etcd3({ hosts: etcdServer.endpoint });
  const router = await startRouter({ port: 0, host: '127.0.0.1', etcd, admin: { port: 0 } });
  addAuthorizedKey(home, readFileSync(`${keyFile}.pub`, 'utf8'), 'bench.pub');
  let control: ControlHandle | undefined;
  const hq = await startHq({ home: home.root, sshPort: 0, host: '127.0.0.1', log: () => {}, onRelease: (...a) => control!.onRelease(...a) });
  control = await startControl({ home, etcd, docker, log: say, config: { routerPort: router.port } });
  const repo = join(dir, 'small-repo');
  const version = exampleRepo(repo);
  const url = `ssh://quarry@127.0.0.1:${hq.sshPort}/${STACK}`;
  const scale = 2;

  try {
    say('small mode: first push (every image built, unless the build cache has it)');
    const first = await pushUntilServing(url, repo, router.port, 'v0');
    say(`small mode: first push served in ${(first.servingMs / 1000).toFixed(1)} s`);
    if (!SMALL) return null;

    const pushSec: number[] = [];
    const dockerSec: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const tag = `r${round}-${Date.now()}`;
      version(tag);
      git(['commit', '-q', '-am', tag], repo, env);
      pushSec.push((await pushUntilServing(url, repo, router.port, tag)).servingMs / 1000);

      // The same docker work, by hand: build the changed web image, run two, wait for health.
      const direct = `${tag}-direct`;
      version(direct);
      const t1 = performance.now();
      const image = `quarry/${STACK}-direct:${round}`;
      await buildImage(docker, { folder: join(repo, 'web'), tag: image });
      // Beside the stack's own web containers, with the same env (wiring, store address).
      const [running] = await listContainers(docker, STACK, 'web');
      const webEnv = Object.fromEntries((await docker.getContainer(running!.id).inspect()).Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
      const startedHere = await Promise.all(Array.from({ length: scale }, (_, i) => startContainer(docker, {
        stack: STACK, name: 'webdirect', kind: 'web', n: round * 10 + i, image, env: webEnv, port: 8080, memoryMb: 128,
      })));
      await Promise.all(startedHere.map((c) => waitHealthy(docker, c.id, { port: 8080, path: '/healthz' })));
      dockerSec.push((performance.now() - t1) / 1000);
      for (const c of startedHere) await removeContainer(docker, c.id, 1);
      await docker.getImage(image).remove({ force: true }).catch(() => undefined);
      say(`round ${round}: push to serving ${pushSec.at(-1)!.toFixed(2)} s, docker work ${dockerSec.at(-1)!.toFixed(2)} s`);
      git(['checkout', '-q', '--', 'web/server.js'], repo, env);
    }
    const pushToServingSec = median(pushSec);
    const dockerWorkSec = median(dockerSec);
    console.log(`small mode, push to serving: median ${pushToServingSec.toFixed(2)} s over ${ROUNDS} rounds`);
    console.log(`small mode, docker work alone (build, run ${scale}, health): median ${dockerWorkSec.toFixed(2)} s`);
    return {
      pushToServingSec: Number(pushToServingSec.toFixed(3)), dockerWorkSec: Number(dockerWorkSec.toFixed(3)),
      ratio: Number((pushToServingSec / dockerWorkSec).toFixed(3)), rounds: ROUNDS,
    };
  } finally {
    // The images stay until the end: the grid part's first pushes find them built.
    await removeStackContainers(docker, STACK);
    await control.close();
    await hq.close();
    await router.close();
    await etcd.close();
    await etcdServer.stop();
  }
}

interface GridFigures {
  firstPushMs: number;
  /** The first push's git command alone. */
  firstGitMs: number;
  /** Bytes into each server during the first push (server id → bytes). */
  firstBytes: Record<string, number>;
  changePushMs: number;
  changeGitMs: number;
  /** Bytes into each server during the change (the median round's; server id → bytes). */
  changeBytes: Record<string, number>;
}

const maxOf = (bytes: Record<string, number>) => Math.max(0, ...Object.values(bytes));
const sumOf = (bytes: Record<string, number>) => Object.values(bytes).reduce((a, b) => a + b, 0);
const mb = (bytes: number) => `${(bytes / MB).toFixed(bytes < MB ? 3 : 1)} MB`;
const perServer = (bytes: Record<string, number>) => Object.entries(bytes).map(([s, b]) => `${s} ${mb(b)}`).join(', ') || 'nothing';

/** Blob bytes HQ's registry sent since byte `from` of its log, by the address that fetched them. */
function registrySent(logPath: string, from: number): Map<string, number> {
  const sent = new Map<string, number>();
  for (const line of readFileSync(logPath).subarray(from).toString('utf8').split('\n')) {
    if (!line.includes('"response completed"')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry['http.request.method'] !== 'GET' || entry['http.response.status'] !== 200) continue;
    if (!/^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/.test(String(entry['http.request.uri']))) continue;
    const ip = String(entry['http.request.remoteaddr']).replace(/:\d+$/, '');
    sent.set(ip, (sent.get(ip) ?? 0) + Number(entry['http.response.written']));
  }
  return sent;
}

/** Bytes streamed whole into each server, from a push's `loaded IMAGE into SERVER (X MB in Y s)` lines. */
function loadedWhole(stderr: string): Record<string, number> {
  const loaded: Record<string, number> = {};
  for (const m of stderr.matchAll(/loaded \S+ into (\S+) \((\d+(?:\.\d+)?) MB in/g)) loaded[m[1]!] = (loaded[m[1]!] ?? 0) + Math.round(Number(m[2]) * MB);
  return loaded;
}

/** What a push said about images moving: its `pulled …` and `loaded …` lines. */
const movedLines = (stderr: string) => stderr.split('\n').filter((l) => /^\s*[\d.]+ s remote:\s*(pulled|loaded) \S+ into /.test(l)).map((l) => l.replace(/remote:\s*/, '').trimEnd());

/** The example with reservations that fill more than one 1 GB server: store 64 + index 800 + crawl 100 on one; categorize 200 + web 2 × 200 on another. */
const spreadYml = (yml: string) => yml.replace(/memory: 64\n {2}web:/, 'memory: 64\n  web:\n    memory: 200');
const spreadTopology = (yml: string) => yml
  .replace('class: indexer', 'class: indexer\n    memory: 800')
  .replace('class: categorizer', 'class: categorizer\n    memory: 200')
  .replace('config: { root: corpus }', 'config: { root: corpus }\n    memory: 100');

/**
 * One fresh grid of `servers` docker-provider servers (images by layers from HQ's registry,
 * or whole): HQ started as `quarry hq` starts it, the servers made and their agents up, then
 * the first push and GRID_ROUNDS one-line changes of the web node; the fleet removed after.
 */
async function gridRun(name: string, options: { registry: boolean; servers: number; spread: boolean }): Promise<GridFigures> {
  const fleet = `bdep${randomBytes(3).toString('hex')}`;
  const home = new HomeLayout(join(dir, name));
  mkdirSync(home.root, { recursive: true });
  addAuthorizedKey(home, readFileSync(`${keyFile}.pub`, 'utf8'), 'bench.pub');
  const config: HqConfig = {
    home: home.root, host: '127.0.0.1', sshPort: 0, apiHost: '127.0.0.1', apiPort: 0, routerPort: 0, etcd: undefined, etcdPort: 0, locknet: false,
    grid: {
      provider: { provider: 'docker', fleet }, min: options.servers, max: options.servers, size: 's-1vcpu-1gb', advertise: undefined,
      locknet: true, registry: options.registry, registryPort: 0,
      // No router host: this measures the push path on servers at grid.max, where a router's memory would change the placement.
      routers: 0,
    },
  };
  const log: Array<{ at: number; line: string }> = [];
  const logged = (text: string, since: number) => log.some((l) => l.at >= since && l.line.startsWith(text));
  let daemon: Daemon | undefined;
  let ctx: DaemonContext | undefined;
  let control: ControlHandle | undefined;
  const what = `${name} (${options.servers} server${options.servers === 1 ? '' : 's'}, ${options.registry ? 'images by layers from HQ\'s registry' : 'whole images'})`;
  try {
    say(`${what}: starting HQ, fleet ${fleet}`);
    const t0 = Date.now();
    daemon = await startDaemon(config, async (c) => {
      ctx = c;
      control = await startControl({ ...c, log: (line) => log.push({ at: Date.now(), line }) });
      return control;
    }, { docker, log: (line) => log.push({ at: Date.now(), line }) });
    if (options.registry !== Boolean(ctx!.registry)) throw new Error(`${name}: HQ ${ctx!.registry ? 'runs' : 'does not run'} a registry`);
    const c = control!;
    const servers = await until(`${options.servers} servers with their agents`, 300_000, 500, async () => {
      const rows = await c.servers();
      return rows.length >= options.servers && rows.every((s) => s.agent && s.state === 'active') ? rows : undefined;
    });
    say(`${what}: HQ and ${servers.map((s) => `${s.id} (${s.address})`).join(', ')} up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const byAddress = new Map(servers.map((s) => [s.address, s.id]));
    /** Bytes into each server since `from` (a registry log offset) by the registry's log, or by the push's lines when whole. */
    const moved = (from: number, stderr: string): Record<string, number> => {
      if (!ctx!.registry) return loadedWhole(stderr);
      const bytes: Record<string, number> = {};
      for (const [ip, n] of registrySent(ctx!.registry.logPath, from)) if (byAddress.has(ip)) bytes[byAddress.get(ip)!] = n;
      return bytes;
    };
    const logOffset = () => (ctx!.registry ? statSync(ctx!.registry.logPath).size : 0);
    const url = `ssh://quarry@127.0.0.1:${daemon.info.sshPort}/${STACK}`;
    const routerPort = daemon.info.routerPort;
    const repo = join(dir, `${name}-repo`);
    const version = options.spread ? exampleRepo(repo, spreadYml, spreadTopology) : exampleRepo(repo);

    /** Waits for the collection that follows a task, so that the next push meets a quiet HQ. */
    const settle = async (since: number) => {
      await until('HQ\'s image collection after the push', 30_000, 200, async () => (logged('images:', since) ? true : undefined))
        .catch((err: Error) => say(`${what}: (${err.message})`));
    };

    let from = logOffset();
    let mark = Date.now();
    const first = await pushUntilServing(url, repo, routerPort, 'v0');
    const firstBytes = moved(from, first.stderr);
    log.push({ at: Date.now(), line: `the first push said (s since it began):\n${first.stderr}` });
    const built = (first.stderr.match(/Building /g) ?? []).length;
    const cached = (first.stderr.match(/unchanged: using the image built before/g) ?? []).length;
    const rows = await c.ps(STACK);
    say(`${what}: first push served in ${(first.servingMs / 1000).toFixed(2)} s (git returned at ${(first.pushMs / 1000).toFixed(2)} s; ` +
      `${built} image(s) looked at, ${cached} found built); moved ${perServer(firstBytes)}`);
    for (const s of servers) say(`  ${s.id}: ${rows.filter((r) => r.server === s.id).map((r) => r.container.slice(STACK.length + 1)).join(', ') || '(empty)'}`);
    for (const line of movedLines(first.stderr)) say(`  ${line}`);
    const used = new Set(rows.map((r) => r.server));
    if (used.size !== options.servers) throw new Error(`${name}: the stack runs on ${used.size} server(s), not ${options.servers}`);
    await settle(mark);

    const changes: Array<{ servingMs: number; pushMs: number; bytes: Record<string, number> }> = [];
    for (let round = 1; round <= GRID_ROUNDS; round++) {
      const v = `${name}-${round}-${Date.now()}`;
      version(v);
      git(['commit', '-q', '-am', v], repo, env);
      from = logOffset();
      mark = Date.now();
      const change = await pushUntilServing(url, repo, routerPort, v);
      const bytes = moved(from, change.stderr);
      log.push({ at: Date.now(), line: `change ${round} said (s since it began):\n${change.stderr}` });
      changes.push({ servingMs: change.servingMs, pushMs: change.pushMs, bytes });
      say(`${what}: one-line change ${round} served in ${(change.servingMs / 1000).toFixed(2)} s (git returned at ${(change.pushMs / 1000).toFixed(2)} s); moved ${perServer(bytes)}`);
      for (const line of movedLines(change.stderr)) say(`  ${line}`);
      await settle(mark);
    }
    const middle = [...changes].sort((a, b) => a.servingMs - b.servingMs)[Math.floor(changes.length / 2)]!;
    return {
      firstPushMs: Math.round(first.servingMs), firstGitMs: Math.round(first.pushMs), firstBytes,
      changePushMs: Math.round(middle.servingMs), changeGitMs: Math.round(middle.pushMs), changeBytes: middle.bytes,
    };
  } catch (err) {
    say(`${what} failed: ${(err as Error).stack ?? String(err)}`);
    say(`HQ's last log lines:\n${log.slice(-30).map((l) => `  ${new Date(l.at).toISOString()} ${l.line}`).join('\n')}`);
    throw err;
  } finally {
    if (process.env.BENCH_DEPLOY_LOG) appendFileSync(process.env.BENCH_DEPLOY_LOG, log.map((l) => `${new Date(l.at).toISOString()} ${name}: ${l.line}\n`).join(''));
    await daemon?.close().catch((err: Error) => say(`stopping HQ: ${err.message}`));
    await removeFleet(fleet);
  }
}

async function main(): Promise<void> {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  if (process.env.BENCH_DEPLOY_LOG) writeFileSync(process.env.BENCH_DEPLOY_LOG, '');
  const result: Record<string, unknown> = {};
  try {
    const small = await smallMode();
    if (small) Object.assign(result, small);
    if (GRID) {
      const attempt = async (name: string, options: Parameters<typeof gridRun>[1]) => {
        try {
          return await gridRun(name, options);
        } catch {
          process.exitCode = 1;
          return null;
        }
      };
      const registry = await attempt('registry', { registry: true, servers: 2, spread: true });
      const whole = await attempt('whole', { registry: false, servers: 2, spread: true });
      const one = await attempt('one', { registry: true, servers: 1, spread: false });
      const sec = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);
      console.log(`two servers, first push → serving: ${sec(registry?.firstPushMs)} by layers, ${sec(whole?.firstPushMs)} whole; one server: ${sec(one?.firstPushMs)}`);
      console.log(`two servers, one-line change → serving: ${sec(registry?.changePushMs)} by layers (goal ≤ 5 s), ${sec(whole?.changePushMs)} whole`);
      console.log(`bytes into each server for the change: ${registry ? perServer(registry.changeBytes) : 'n/a'} by layers (goal ≤ 1 MB each); ` +
        `${whole ? perServer(whole.changeBytes) : 'n/a'} whole`);
      if (registry && one) console.log(`first push to two servers ÷ to one: ${(registry.firstPushMs / one.firstPushMs).toFixed(2)} (goal ≤ 1.5)`);
      Object.assign(result, {
        firstPushMs: registry?.firstPushMs ?? null,
        changePushMs: registry?.changePushMs ?? null,
        changeBytesPerServer: registry ? maxOf(registry.changeBytes) : null,
        wholeImageBytes: whole ? maxOf(whole.changeBytes) : null,
        wholeImageBytesTotal: whole ? sumOf(whole.changeBytes) : null,
        wholeFirstPushMs: whole?.firstPushMs ?? null,
        wholeChangePushMs: whole?.changePushMs ?? null,
        onePushMs: one?.firstPushMs ?? null,
        firstPushRatio: registry && one ? Number((registry.firstPushMs / one.firstPushMs).toFixed(3)) : null,
        firstBytesPerServer: registry ? maxOf(registry.firstBytes) : null,
        wholeFirstBytesPerServer: whole ? maxOf(whole.firstBytes) : null,
        gridRounds: GRID_ROUNDS,
      });
    }
    console.log(JSON.stringify(result));
  } finally {
    await removeStackContainers(docker, STACK);
    await removeStackImages(docker, STACK);
    rmSync(dir, { recursive: true, force: true });
    say('done');
  }
}

await main();
