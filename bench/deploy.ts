/**
 * bench:deploy — the time from `git push` of a one-line change of the example's web node to
 * the new version serving through the router (warm cache: every other image is built), against
 * the same docker work done directly in the same run: build the changed image, run the same
 * number of containers, wait until they answer their health path. Rounds alternate; medians count.
 * Last line: JSON with pushToServingSec, dockerWorkSec and their ratio.
 *
 *   DEPLOY_ROUNDS=3 npm run bench:deploy
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import { HomeLayout } from '../home/index.js';
import { addAuthorizedKey, startControl, startHq, startOwnEtcd, type ControlHandle } from '../hq/index.js';
import { buildImage, listContainers, removeContainer, startContainer, waitHealthy } from '../launcher/index.js';
import { startRouter } from '../router/index.js';
import { benchGitEnv, exampleCopy } from './example.js';

const ROUNDS = Number(process.env.DEPLOY_ROUNDS ?? 3);
const STACK = `benchdeploy-${process.pid}`;
const DOMAIN = `${STACK}.localhost`;
const docker = new Docker();
const dir = mkdtempSync(join(tmpdir(), 'quarry-bench-deploy-'));
const say = (line: string) => process.stderr.write(`${line}\n`);

function get(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Host: host }, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const git = (args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) => execFileSync('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
/** A push must not block this process's event loop: HQ, answering it, runs here too. */
const gitPush = (url: string, cwd: string, env: NodeJS.ProcessEnv) => new Promise<void>((resolve, reject) => {
  execFile('git', ['push', '-q', url, 'main'], { cwd, env }, (err, _out, stderr) => (err ? reject(new Error(`git push failed: ${stderr}`)) : resolve()));
});

async function main(): Promise<void> {
  const home = new HomeLayout(join(dir, 'home'));
  const etcdServer = await startOwnEtcd({ home, port: 0 });
  const etcd = new Etcd3({ hosts: etcdServer.endpoint });
  const router = await startRouter({ port: 0, host: '127.0.0.1', etcd, admin: { port: 0 } });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
  addAuthorizedKey(home, readFileSync(join(dir, 'key.pub'), 'utf8'), 'bench.pub');
  let control: ControlHandle | undefined;
  const hq = await startHq({ home: home.root, sshPort: 0, host: '127.0.0.1', log: () => {}, onRelease: (...a) => control!.onRelease(...a) });
  control = await startControl({ home, etcd, docker, log: say, config: { routerPort: router.port } });
  const env = benchGitEnv(join(dir, 'key'));
  const repo = exampleCopy(join(dir, 'repo'), DOMAIN);
  git(['init', '-q', '-b', 'main'], repo, env);
  const server = join(repo, 'web', 'server.js');
  const original = readFileSync(server, 'utf8');
  const version = (v: string) => writeFileSync(server, original.replace("res.end('ok')", `res.end('ok ${v}')`));
  const url = `ssh://quarry@127.0.0.1:${hq.sshPort}/${STACK}`;
  const scale = 2;

  try {
    say('warming up: first push (every image built)');
    version('v0');
    git(['add', '-A'], repo, env);
    git(['commit', '-q', '-m', 'v0'], repo, env);
    await gitPush(url, repo, env);

    const pushSec: number[] = [];
    const dockerSec: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const tag = `r${round}-${Date.now()}`;
      version(tag);
      git(['commit', '-q', '-am', tag], repo, env);
      const t0 = performance.now();
      let failed: unknown;
      const pushing = gitPush(url, repo, env).catch((err) => { failed = err; });
      for (;;) {
        if (failed) throw failed;
        if ((await get(router.port, DOMAIN, '/healthz')).body === `ok ${tag}`) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      pushSec.push((performance.now() - t0) / 1000);
      await pushing;

      // The same docker work, by hand: build the changed web image, run two, wait for health.
      const direct = `${tag}-direct`;
      version(direct);
      const t1 = performance.now();
      const image = `quarry/${STACK}-direct:${round}`;
      await buildImage(docker, { folder: join(repo, 'web'), tag: image });
      // Beside the stack's own web containers, with the same env (wiring, store address).
      const [running] = await listContainers(docker, STACK, 'web');
      const webEnv = Object.fromEntries((await docker.getContainer(running!.id).inspect()).Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
      const started = await Promise.all(Array.from({ length: scale }, (_, i) => startContainer(docker, {
        stack: STACK, name: 'webdirect', kind: 'web', n: round * 10 + i, image, env: webEnv, port: 8080, memoryMb: 128,
      })));
      await Promise.all(started.map((c) => waitHealthy(docker, c.id, { port: 8080, path: '/healthz' })));
      dockerSec.push((performance.now() - t1) / 1000);
      for (const c of started) await removeContainer(docker, c.id, 1);
      await docker.getImage(image).remove({ force: true }).catch(() => undefined);
      say(`round ${round}: push to serving ${pushSec.at(-1)!.toFixed(2)} s, docker work ${dockerSec.at(-1)!.toFixed(2)} s`);
      git(['checkout', '-q', '--', 'web/server.js'], repo, env);
    }
    const pushToServingSec = median(pushSec);
    const dockerWorkSec = median(dockerSec);
    console.log(`push to serving: median ${pushToServingSec.toFixed(2)} s over ${ROUNDS} rounds`);
    console.log(`docker work alone (build, run ${scale}, health): median ${dockerWorkSec.toFixed(2)} s`);
    console.log(JSON.stringify({
      pushToServingSec: Number(pushToServingSec.toFixed(3)), dockerWorkSec: Number(dockerWorkSec.toFixed(3)),
      ratio: Number((pushToServingSec / dockerWorkSec).toFixed(3)), rounds: ROUNDS,
    }));
  } finally {
    for (const stack of [STACK]) {
      for (const c of await listContainers(docker, stack)) await removeContainer(docker, c.id, 1);
      await docker.getNetwork(`quarry-${stack}`).remove().catch(() => undefined);
    }
    const images = await docker.listImages({ filters: { reference: [`quarry/${STACK}-*`] } });
    // By tag: the same build under another stack's tag (a test's) keeps its image.
    for (const tag of images.flatMap((i) => i.RepoTags ?? []).filter((x) => x.startsWith(`quarry/${STACK}-`))) {
      await docker.getImage(tag).remove().catch(() => undefined);
    }
    await control.close();
    await hq.close();
    await router.close();
    await etcd.close();
    await etcdServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
