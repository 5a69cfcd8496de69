/**
 * bench:heal — how fast a stack on a grid serves again after things break, HQ in this process
 * on a grid of docker-provider servers (containers with their own dockerd, sshd and agent):
 *
 *   crashToServingMs         kill -9 of both web containers' processes → every web route answers
 *                            /healthz 200 (the servers' caretakers restart them in place);
 *   handStartToServingMs     the floor beside it: kill -9 of one, `docker start` by hand at once;
 *   serviceCrashToServingMs  kill -9 of the store service's process → it answers HTTP again;
 *   serverLossToServingMs    `docker kill` of a server that runs a web container → ps lists every
 *                            container running elsewhere and the router serves the domain;
 *                            lostAfterMs (HQ's log says it is lost), slowestPsMs (ps and servers,
 *                            asked every second meanwhile), grew (a server was made);
 *   drainFailedRequests      requests through the router that failed while a server with web
 *                            containers was drained (drainRequests in all, drainMs).
 *
 * Crash rounds alternate with hand-start rounds; medians count. The web node's restart window
 * is short (10 s) and rounds are 11 s apart, so every kill meets a first restart (at once).
 * Progress on stderr; last stdout line: JSON. HQ's log: BENCH_HEAL_LOG=FILE.
 *
 *   BENCH_HEAL_ROUNDS=3 npm run bench:heal
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { HomeLayout } from '../home/index.js';
import { addAuthorizedKey, startControl, startDaemon, type ControlHandle, type Daemon, type HqConfig, type PsRow } from '../hq/index.js';
import { benchGitEnv, dockerCli, exampleCopy, median, removeFleet, run, sleep, until } from './example.js';

const ROUNDS = Number(process.env.BENCH_HEAL_ROUNDS ?? 3);
const tag = randomBytes(3).toString('hex');
const STACK = `benchheal-${tag}`;
const DOMAIN = `${STACK}.localhost`;
const FLEET = `bheal${tag}`;
/** The web node's restart window: rounds are spaced wider, so each kill meets a first restart. */
const WINDOW_MS = 10_000;
/**
 * The grid's min (BENCH_HEAL_MIN, default 3): three servers, the stack spread over two, the
 * third with room; a lost server's containers start there, and a replacement joins after (the
 * grid keeps its min). A smaller min lets slicegrid remove an empty server at the next change.
 */
const MIN = Number(process.env.BENCH_HEAL_MIN ?? 3);
const docker = new Docker();
const dir = mkdtempSync(join(tmpdir(), 'quarry-bench-heal-'));
const started = Date.now();
const say = (line: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

/** HQ's log, each line with the time it was written. */
const hqLog: Array<{ at: number; line: string }> = [];
const logAt = (text: string) => hqLog.find((l) => l.line.includes(text));

function get(url: string, options: { host?: string; timeoutMs?: number } = {}): Promise<{ status: number; error?: string }> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: options.timeoutMs ?? 1000, ...(options.host && { headers: { Host: options.host } }) }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.on('error', (err) => resolve({ status: 0, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ status: 0, error: err.message }));
    req.end();
  });
}

/** A shell command inside a docker-provider server (its own container on this machine). */
const onServer = (id: string, command: string) => dockerCli(['exec', `quarry-server-${id}`, 'sh', '-c', command]);
const killProcess = (row: PsRow) => onServer(row.server, `kill -9 $(docker inspect -f '{{.State.Pid}}' ${row.container})`);

async function main(): Promise<void> {
  const home = new HomeLayout(join(dir, 'home'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
  addAuthorizedKey(home, readFileSync(join(dir, 'key.pub'), 'utf8'), 'bench.pub');
  const config: HqConfig = {
    home: home.root, host: '127.0.0.1', sshPort: 0, apiHost: '127.0.0.1', apiPort: 0, routerPort: 0, etcd: undefined, etcdPort: 0, locknet: false,
    grid: { provider: { provider: 'docker', fleet: FLEET }, min: MIN, max: 4, size: 's-1vcpu-1gb', advertise: undefined, locknet: true, registry: true, registryPort: 0, routers: 0 },
  };
  const writeLog = (line: string) => {
    hqLog.push({ at: Date.now(), line });
    if (process.env.BENCH_HEAL_VERBOSE) say(`hq: ${line}`);
  };
  let daemon: Daemon | undefined;
  let control: ControlHandle | undefined;
  let etcd: Etcd3 | undefined;
  try {
    // HQ as `quarry hq` starts it (hq/daemon): etcd with TLS for the agents on the servers'
    // network (the grid's CA, the network's gateway advertised), the router, the control on the
    // grid, the git endpoint; only hq/index.ts is bench's to import, and it puts these together.
    say(`starting HQ with a grid of docker-provider servers (fleet ${FLEET}, min ${MIN}, max 4; 3 servers)`);
    daemon = await startDaemon(config, async (ctx) => {
      etcd = ctx.etcd;
      control = await startControl({ ...ctx, log: writeLog });
      return control;
    }, { docker, log: writeLog });
    const routerPort = daemon.info.routerPort;
    const c = control!;
    const kv = etcd!;
    const quiet = { step: (m: string) => say(`  grid: ${m}`), info: () => undefined, error: (m: string) => say(`  grid error: ${m}`) };
    while ((await c.servers()).length < 3) await c.addServer(undefined, quiet);
    say(`HQ up: ${(await c.servers()).map((s) => `${s.id} (${s.address}, agent ${s.agent})`).join(', ')}`);

    // The example, its web node bigger (the stack spreads over two servers, the third has room)
    // with a short restart window, on a domain of its own.
    const env = benchGitEnv(join(dir, 'key'));
    const repo = exampleCopy(join(dir, 'repo'), DOMAIN, (yml) => yml
      .replace('    type: web\n', `    type: web\n    memory: 400\n    restart: { attempts: 20, interval: ${WINDOW_MS / 1000}s, delay: 1s }\n`));
    await run('git', ['init', '-q', '-b', 'main'], { cwd: repo, env });
    await run('git', ['add', '-A'], { cwd: repo, env });
    await run('git', ['commit', '-q', '-m', 'docsearch'], { cwd: repo, env });
    say(`pushing ${STACK} (every image built)`);
    const t0 = Date.now();
    await run('git', ['push', '-q', `ssh://quarry@127.0.0.1:${daemon.info.sshPort}/${STACK}`, 'main'], { cwd: repo, env });
    say(`pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const placed = await c.ps(STACK);
    for (const s of await c.servers()) say(`  ${s.id}: ${placed.filter((r) => r.server === s.id).map((r) => r.container.slice(STACK.length + 1)).join(', ') || '(empty)'} — ${s.used}/${s.memory} MB`);
    await until('the router serving the domain', 60_000, 100, async () => ((await get(`http://127.0.0.1:${routerPort}/healthz`, { host: DOMAIN })).status === 200 ? true : undefined));

    const routes = async () => Object.values(await kv.getAll().prefix(`/quarry/routes/${DOMAIN}/`).strings());
    const care = async (container: string) => {
      const text = await kv.get(`/quarry/stacks/${STACK}/care/${container}`).string();
      return text ? JSON.parse(text) as { state: string; restarts: number; lastExit?: { code: number } } : undefined;
    };
    /** Each route's ms since `since` until it answered /healthz 200 (polled every 20 ms), at the last one. */
    let each: number[] = [];
    const allServing = async (urls: string[], since: number) => {
      each = await Promise.all(urls.map((url) => until(`${url}/healthz`, 60_000, 20, async () => ((await get(`${url}/healthz`, { timeoutMs: 1000 })).status === 200 ? Date.now() - since : undefined))));
      return Date.now() - since;
    };
    /** Every web container running by its caretaker's record, every route answering. */
    const settled = async (webs: PsRow[], urls: string[]) => {
      for (const w of webs) await until(`${w.container} running by its care record`, 30_000, 100, async () => ((await care(w.container))?.state === 'running' ? true : undefined));
      await allServing(urls, Date.now());
    };

    // ── 1. a web container's process killed: the caretaker against a start by hand ──────────
    const webs = (await c.ps(STACK)).filter((r) => r.name === 'web');
    const urls = await routes();
    say(`web containers: ${webs.map((w) => `${w.container} on ${w.server}`).join(', ')}; routes ${urls.join(' ')}`);
    if (webs.length !== 2 || urls.length !== 2) throw new Error(`expected 2 web containers and 2 routes, found ${webs.length} and ${urls.length}`);
    const crash: number[] = [];
    const hand: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await settled(webs, urls);
      const before = await Promise.all(webs.map(async (w) => (await care(w.container))?.restarts ?? 0));
      await Promise.all(webs.map(killProcess));
      crash.push(await allServing(urls, Date.now()));
      const after = await Promise.all(webs.map(async (w) => (await care(w.container))?.restarts ?? 0));
      say(`round ${round}: both web processes killed → every route serving in ${crash.at(-1)} ms (each: ${each.join(', ')} ms; caretaker restarts ${before.join(',')} → ${after.join(',')})`);
      await sleep(WINDOW_MS + 1000);

      const web = webs[round % webs.length]!;
      await settled(webs, urls);
      await killProcess(web);
      const killedAt = Date.now();
      await onServer(web.server, `docker start ${web.container} >/dev/null`);
      hand.push(await allServing(urls, killedAt));
      say(`round ${round}: ${web.container} killed, started by hand at once → every route serving in ${hand.at(-1)} ms`);
      await sleep(WINDOW_MS + 1000);
    }
    const crashToServingMs = median(crash);
    const handStartToServingMs = median(hand);
    say(`crash → serving: median ${crashToServingMs} ms (${crash.join(', ')}); by hand: median ${handStartToServingMs} ms (${hand.join(', ')})`);

    // ── 2. the store service's process killed ─────────────────────────────────────────────
    const store = (await c.ps(STACK)).find((r) => r.name === 'store')!;
    const storeEnv = await kv.getAll().prefix(`/quarry/stacks/${STACK}/env/`).strings();
    const storeUrl = `http://${storeEnv[`/quarry/stacks/${STACK}/env/STORE_HOST`]}:${storeEnv[`/quarry/stacks/${STACK}/env/STORE_PORT`]}/searches`;
    await until(`the store at ${storeUrl}`, 30_000, 100, async () => ((await get(storeUrl)).status > 0 ? true : undefined));
    await killProcess(store);
    const storeKilled = Date.now();
    await until(`the store at ${storeUrl} again`, 60_000, 20, async () => ((await get(storeUrl, { timeoutMs: 1000 })).status > 0 ? true : undefined));
    const serviceCrashToServingMs = Date.now() - storeKilled;
    say(`store (${store.container} on ${store.server}) killed → answering at ${storeUrl} in ${serviceCrashToServingMs} ms (care: ${JSON.stringify(await care(store.container))})`);

    // ── 3. a server that runs a web container dies ────────────────────────────────────────
    const rows = await c.ps(STACK);
    const serversBefore = await c.servers();
    const webServers = [...new Set(rows.filter((r) => r.name === 'web').map((r) => r.server))];
    const victim = webServers.find((s) => !rows.some((r) => r.server === s && r.kind === 'service')) ?? webServers[0]!;
    say(`killing server ${victim}, which runs ${rows.filter((r) => r.server === victim).map((r) => r.container).join(', ')}`);
    let watching = true;
    let slowestPsMs = 0;
    let looks = 0;
    const failures: string[] = [];
    await dockerCli(['kill', `quarry-server-${victim}`]);
    const killedAt = Date.now();
    const timed = async <T>(what: string, ask: () => Promise<T>) => {
      const t = performance.now();
      try {
        await ask();
      } catch (err) {
        failures.push(`${Date.now() - killedAt} ms: ${what}: ${(err as Error).message}`);
      }
      slowestPsMs = Math.max(slowestPsMs, performance.now() - t);
    };
    const watcher = (async () => {
      while (watching) {
        const next = sleep(1000);
        await Promise.all([timed('ps', () => c.ps(STACK)), timed('servers', () => c.servers())]);
        looks += 1;
        await next;
      }
    })();
    let lastLook = '';
    const serverLossToServingMs = await until(`the stack serving again without ${victim}`, 120_000, 100, async () => {
      const ps = await c.ps(STACK);
      const look = `${ps.length} containers: ${ps.filter((r) => r.server === victim).map((r) => `${r.container}=${r.state}`).join(' ') || `none on ${victim}`}`;
      if (look !== lastLook) say(`  ${Date.now() - killedAt} ms: ${look}`);
      lastLook = look;
      if (ps.length !== rows.length || ps.some((r) => r.server === victim || r.state !== 'running')) return undefined;
      return (await get(`http://127.0.0.1:${routerPort}/healthz`, { host: DOMAIN, timeoutMs: 2000 })).status === 200 ? Date.now() - killedAt : undefined;
    }).catch((err: Error) => {
      // HQ did not bring the stack back: reported as null, and the drain is measured all the same.
      say(`NOT serving as before: ${err.message}; last look: ${lastLook}`);
      process.exitCode = 1;
      return null;
    });
    const lost = logAt(`server ${victim} is lost`);
    const lostAfterMs = lost ? lost.at - killedAt : null;
    say(`serving again without ${victim} ${serverLossToServingMs} ms after it was killed; HQ found it lost after ${lostAfterMs} ms`);
    await until(`HQ's "server ${victim} replaced"`, 60_000, 200, async () => (logAt(`server ${victim} replaced in`) ? true : undefined))
      .catch((err: Error) => say(`(${err.message})`));
    watching = false;
    await watcher;
    const serversAfter = await c.servers();
    const made = serversAfter.filter((s) => !serversBefore.some((b) => b.id === s.id));
    const grew = made.length > 0 || hqLog.some((l) => l.at > killedAt && /adding a .* server/.test(l.line));
    say(`servers now: ${serversAfter.map((s) => `${s.id}=${s.state}`).join(' ')}; grew: ${grew}${made.length > 0 ? ` (${made.map((s) => s.id).join(', ')})` : ''}`);
    say(`ps and servers asked ${looks} times meanwhile: slowest ${slowestPsMs.toFixed(0)} ms, ${failures.length} failed${failures.length > 0 ? `:\n  ${failures.join('\n  ')}` : ''}`);
    for (const l of hqLog.filter((x) => x.at >= killedAt && /^heal|lost|replaced|adding|removing/.test(x.line))) say(`  hq +${l.at - killedAt} ms: ${l.line}`);

    // ── 4. drain a server with web containers, requests flowing through the router ────────
    const now = await c.ps(STACK);
    const byWebs = [...new Set(now.filter((r) => r.name === 'web').map((r) => r.server))]
      .map((s) => ({ s, webs: now.filter((r) => r.server === s && r.name === 'web').length, service: now.some((r) => r.server === s && r.kind === 'service') }))
      .sort((a, b) => b.webs - a.webs || Number(a.service) - Number(b.service));
    const drained = byWebs[0]!.s;
    say(`draining ${drained}, which runs ${now.filter((r) => r.server === drained).map((r) => r.container).join(', ')}`);
    let flowing = true;
    let requests = 0;
    const failed: string[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      while (flowing) {
        const r = await get(`http://127.0.0.1:${routerPort}/healthz`, { host: DOMAIN, timeoutMs: 5000 });
        requests += 1;
        if (r.status !== 200) failed.push(`${new Date().toISOString()} ${r.status} ${r.error ?? ''}`);
        await sleep(10);
      }
    });
    await sleep(1000);
    const drainStart = performance.now();
    let drainMs: number | null = null;
    try {
      await c.drainServer(drained, false, {
        step: (m) => say(`  drain: ${m}`), info: (m) => say(`  drain: ${m}`), error: (m) => say(`  drain error: ${m}`),
      });
      drainMs = Math.round(performance.now() - drainStart);
    } catch (err) {
      say(`the drain FAILED after ${Math.round(performance.now() - drainStart)} ms: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    }
    await sleep(1000);
    flowing = false;
    await Promise.all(workers);
    say(`drained ${drained} in ${drainMs} ms: ${failed.length} of ${requests} requests failed${failed.length > 0 ? `:\n  ${failed.slice(0, 20).join('\n  ')}` : ''}`);
    const afterDrain = await c.ps(STACK);
    say(`after the drain: ${afterDrain.map((r) => `${r.container}@${r.server}=${r.state}`).join(' ')}`);

    console.log(JSON.stringify({
      crashToServingMs, handStartToServingMs, serviceCrashToServingMs, serverLossToServingMs, lostAfterMs,
      slowestPsMs: Math.round(slowestPsMs), psFailures: failures.length, drainFailedRequests: failed.length, drainRequests: requests, drainMs, grew, rounds: ROUNDS,
    }));
  } catch (err) {
    say(`failed: ${(err as Error).stack ?? String(err)}`);
    say(`HQ's last log lines:\n${hqLog.slice(-40).map((l) => `  ${new Date(l.at).toISOString()} ${l.line}`).join('\n')}`);
    process.exitCode = 1;
  } finally {
    if (process.env.BENCH_HEAL_LOG) writeFileSync(process.env.BENCH_HEAL_LOG, hqLog.map((l) => `${new Date(l.at).toISOString()} ${l.line}\n`).join(''));
    say('cleaning up');
    await daemon?.close().catch((err: Error) => say(`stopping HQ: ${err.message}`));
    await removeFleet(FLEET);
    for (const info of await docker.listContainers({ all: true, filters: { label: [`quarry.stack=${STACK}`] } })) {
      await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
    }
    await docker.getNetwork(`quarry-${STACK}`).remove().catch(() => undefined);
    const images = await docker.listImages({ filters: { reference: [`quarry/${STACK}-*`] } });
    // By tag: the same build under another stack's tag (a test's) keeps its image.
    for (const tag of images.flatMap((i) => i.RepoTags ?? []).filter((x) => x.startsWith(`quarry/${STACK}-`))) {
      await docker.getImage(tag).remove().catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
    say('done');
  }
}

await main();
