// A deploy that fails part way is undone, and a push whose pusher goes away carries on to its
// end: each against a real HQ (the part that runs stacks on the real docker engine, its etcd,
// its router) and real `git push`es over HQ's SSH endpoint. Every test pushes its own small
// stack of two web nodes, `a` and `b`, each answering on its own domain, so they run side by side.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import Docker from 'dockerode';
import ssh2 from 'ssh2';
import { startControl, type ControlHandle } from '../../hq/index.js';
import { LocalCluster, listContainers, removeContainer, type Cluster } from '../../launcher/index.js';
import { startRouter, type Router } from '../../router/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { httpGet } from '../support/http.js';
import { commitAll, gitEnv, push, refOf, removeStacks, startTestHq, uniqueStack, type TestHq } from './harness.js';

const docker = new Docker();
let etcd: TestEtcd;
let router: Router;
let control: ControlHandle;
let t: TestHq;
const stacks: string[] = [];

/**
 * The engine as HQ sees it, with one fault a test may arm: containers of one stack's release
 * are refused (as an engine that cannot start them would), so that putting a stack back fails.
 */
const refuse = new Map<string, string>();
function refusingCluster(): Cluster {
  const local = new LocalCluster(docker);
  const cluster = Object.create(local) as Cluster;
  cluster.start = async (specs, progress) => {
    if (specs.some((s) => refuse.get(s.stack) === s.release)) {
      return specs.map(() => ({ status: 'rejected' as const, reason: new Error('the engine refused to start it (a test fault)') }));
    }
    return (local as Cluster).start(specs, progress);
  };
  return cluster;
}

test.before(async () => {
  etcd = await startEtcd();
  router = await startRouter({ port: 0, host: '127.0.0.1', etcd: etcd.client, admin: { port: 0 } });
  let handle: ControlHandle | undefined;
  t = await startTestHq({ onRelease: (...args) => handle!.onRelease(...args) });
  handle = await startControl({
    home: t.home, etcd: etcd.client, docker, log: (line) => t.log.push(line), config: { routerPort: router.port }, drainMs: 300, cluster: refusingCluster(),
  });
  control = handle;
});

test.after.always(async () => {
  await removeStacks(stacks);
  await control?.close();
  await t?.close();
  await router?.close();
  await etcd?.stop();
});

/**
 * How a node's code behaves: `ok` answers `say` at once; `exit` dies as it starts (never
 * healthy); `gate` answers its health check 503 until it gets `POST /go` (a deploy that
 * waits for the test).
 */
type Mode = 'ok' | 'exit' | 'gate';

function serverJs(say: string, mode: Mode): string {
  if (mode === 'exit') return `console.log('${say}: exiting'); process.exit(3);\n`;
  return [
    "const http = require('node:http');",
    `let open = ${mode === 'ok'};`,
    'http.createServer((req, res) => {',
    "  if (req.url === '/go' && req.method === 'POST') { open = true; return res.end('going'); }",
    "  if (req.url === '/healthz') { res.statusCode = open ? 200 : 503; return res.end(open ? 'ok' : 'not yet'); }",
    `  res.end('${say}');`,
    '}).listen(Number(process.env.PORT));',
    "process.on('SIGTERM', () => process.exit(0));",
    '',
  ].join('\n');
}

interface Small { stack: string; repo: string; commit(message: string, a: [string, Mode], b: [string, Mode]): Promise<string> }

/** A stack of two web nodes, a then b, each with its own build folder and domain. */
async function smallStack(base: string): Promise<Small> {
  const stack = uniqueStack(base);
  stacks.push(stack);
  const repo = join(t.dir, `work-${stack}`);
  const nodes = ['a', 'b'];
  for (const name of nodes) {
    mkdirSync(join(repo, name), { recursive: true });
    writeFileSync(join(repo, name, 'Dockerfile'), 'FROM quarry/node:20\nCOPY server.js /app/server.js\n');
  }
  writeFileSync(join(repo, 'quarry.yml'), ['version: 1', 'nodes:', ...nodes.flatMap((name) => [
    `  ${name}:`, '    type: web', `    build: ./${name}`, '    command: [node, /app/server.js]', '    port: 8080',
    `    domains: [${name}.${stack}.localhost]`, '    health: /healthz', '    memory: 64',
  ]), ''].join('\n'));
  let first = true;
  return {
    stack, repo,
    async commit(message, a, b) {
      writeFileSync(join(repo, 'a', 'server.js'), serverJs(...a));
      writeFileSync(join(repo, 'b', 'server.js'), serverJs(...b));
      const sha = await commitAll(repo, message, first);
      first = false;
      return sha;
    },
  };
}

/** What a node answers through the router: `expected` once the router has the routes HQ wrote, else what it last answered. */
async function ask(stack: string, node: string, expected: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = await httpGet(`http://127.0.0.1:${router.port}/`, 5000, { Host: `${node}.${stack}.localhost` }).then((r) => r.body, (err: Error) => err.message);
    if (got === expected || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function post(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.setTimeout(5000, () => req.destroy(new Error(`POST ${url}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

/** Waits for a condition the test cannot be told of directly (HQ's log, a ref); fails after a deadline. */
async function until<T>(what: string, get: () => T | Promise<T>, ok: (value: T) => boolean, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s (last: ${JSON.stringify(value)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tasksOf(stack: string): { state: string; version: number; messages: { text: string }[] }[] {
  const dir = join(t.home.root, 'tasks');
  return readdirSync(dir).filter((f) => f.includes(`-${stack}-`)).sort().map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

/** The stack's routes in etcd: route key → backend. */
async function routesOf(stack: string): Promise<Record<string, string>> {
  const all = await etcd.client.getAll().prefix('/quarry/routes/').strings();
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.slice(k.lastIndexOf('/') + 1).startsWith(`${stack}.`)));
}

test('a push whose second node never becomes healthy is rejected and undone: the first node runs v1 again, only v1 is released', async (tt) => {
  const s = await smallStack('undo');
  const v1 = await s.commit('v1', ['a v1', 'ok'], ['b v1', 'ok']);
  const first = await push(t, s.repo, s.stack);
  tt.is(first.code, 0, first.stderr);
  tt.is(await ask(s.stack, 'a', 'a v1'), 'a v1');
  const [aV1] = await listContainers(docker, s.stack, 'a');
  const [bV1] = await listContainers(docker, s.stack, 'b');

  await s.commit('v2', ['a v2', 'ok'], ['b v2', 'exit']);
  const second = await push(t, s.repo, s.stack);
  tt.not(second.code, 0);
  tt.regex(second.stdout, /\[remote rejected\]/);
  // a was deployed first and made healthy (its v1 container retired), then b failed.
  tt.regex(second.stderr, /Deploying web a[^]*healthy[^]*stopped [^\n]*\.a\.1[^]*Deploying web b[^]*exited with code 3/);
  tt.regex(second.stderr, new RegExp(`v2 failed; putting ${s.stack} back on v1`));
  tt.regex(second.stderr, new RegExp(`-----> Putting ${s.stack} back on v1`));
  tt.regex(second.stderr, /starting a member 0/);
  tt.regex(second.stderr, new RegExp(`${s.stack} runs v1 again`));

  // a runs v1's definition again (a new container: the v1 one was gone), b its v1 container.
  const rows = await control.ps(s.stack);
  tt.deepEqual(rows.map((r) => [r.name, r.state, r.release]), [['a', 'running', 'v1'], ['b', 'running', 'v1']], JSON.stringify(rows));
  const a = await listContainers(docker, s.stack, 'a');
  tt.is(a.length, 1, JSON.stringify(a.map((c) => c.name)));
  tt.is(a[0]!.digest, aV1!.digest, 'a has v1\'s definition (quarry.digest)');
  tt.is(a[0]!.release, 'v1');
  tt.not(a[0]!.id, aV1!.id);
  tt.deepEqual((await listContainers(docker, s.stack, 'b')).map((c) => c.id), [bV1!.id], 'b\'s v1 container was never stopped');
  tt.is(await ask(s.stack, 'a', 'a v1'), 'a v1');
  tt.is(await ask(s.stack, 'b', 'b v1'), 'b v1');
  tt.deepEqual(await routesOf(s.stack), {
    [`/quarry/routes/a.${s.stack}.localhost/${a[0]!.name}`]: `http://${a[0]!.ip}:8080`,
    [`/quarry/routes/b.${s.stack}.localhost/${bV1!.name}`]: `http://${bV1!.ip}:8080`,
  });

  const releases = await control.releases(s.stack);
  tt.deepEqual(releases.map((r) => [r.version, r.commit]), [[1, v1]]);
  tt.is(await refOf(t.home.repo(s.stack)), v1, 'the ref did not move');
  tt.deepEqual(tasksOf(s.stack).map((x) => [x.version, x.state]), [[1, 'done'], [2, 'failed']]);
});

test('a first push that fails part way leaves nothing of the stack: no container, route or release', async (tt) => {
  const s = await smallStack('undofirst');
  await s.commit('v1', ['a v1', 'ok'], ['b v1', 'exit']);
  const r = await push(t, s.repo, s.stack);
  tt.not(r.code, 0);
  tt.regex(r.stderr, /Deploying web a[^]*Deploying web b[^]*exited with code 3/);
  tt.regex(r.stderr, /v1 failed; removing what it started/);
  tt.regex(r.stderr, new RegExp(`removing ${s.stack}\\.a\\.1`));
  tt.regex(r.stderr, new RegExp(`nothing of ${s.stack} runs`));
  tt.deepEqual(await listContainers(docker, s.stack), []);
  tt.deepEqual(await routesOf(s.stack), {});
  tt.deepEqual(await etcd.client.getAll().prefix(`/quarry/stacks/${s.stack}/endpoints/`).keys(), []);
  tt.deepEqual(await control.releases(s.stack).catch(() => []), []);
  tt.is(await refOf(t.home.repo(s.stack)), '');
});

test('when putting the stack back fails too, the task fails and says which containers still run the new code', async (tt) => {
  const s = await smallStack('undofail');
  const v1 = await s.commit('v1', ['a v1', 'ok'], ['b v1', 'ok']);
  tt.is((await push(t, s.repo, s.stack)).code, 0);

  await s.commit('v2', ['a v2', 'ok'], ['b v2', 'exit']);
  refuse.set(s.stack, 'v1');
  const r = await push(t, s.repo, s.stack);
  refuse.delete(s.stack);
  tt.not(r.code, 0);
  tt.regex(r.stderr, new RegExp(`could not put ${s.stack} back on v1: the engine refused to start it`));
  tt.regex(r.stderr, new RegExp(`still on v2's code: ${s.stack}\\.a\\.2 \\(a\\); see quarry ps ${s.stack}, then push again or quarry rollback ${s.stack} v1`));
  const rows = await control.ps(s.stack);
  tt.deepEqual(rows.map((x) => [x.container, x.release]), [[`${s.stack}.a.2`, 'v2'], [`${s.stack}.b.1`, 'v1']], 'what the message names is what runs');
  tt.deepEqual((await control.releases(s.stack)).map((x) => [x.version, x.commit]), [[1, v1]]);
  const task = tasksOf(s.stack).at(-1)!;
  tt.is(task.state, 'failed');
  tt.true(task.messages.some((m) => /still on v2's code/.test(m.text)));
  tt.true(t.log.some((line) => line.includes(`${s.stack}: undoing v2 failed`)));
});

test('a pusher that goes away during the deploy: the push carries on, and the ref, the release and what runs all name the new commit', async (tt) => {
  const s = await smallStack('leave');
  await s.commit('v1', ['a v1', 'ok'], ['b v1', 'ok']);
  tt.is((await push(t, s.repo, s.stack)).code, 0);

  // v2 of a waits for the test before it is healthy: the pusher is cut off while it deploys.
  const v2 = await s.commit('v2', ['a v2', 'gate'], ['b v1', 'ok']);
  const pusher = spawn('git', ['push', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${s.stack}`, 'main'], {
    cwd: s.repo, env: gitEnv(t.key, t.hq.sshPort), detached: true, stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => pusher.once('exit', (_code, signal) => resolve(signal)));
  let said = '';
  await new Promise<void>((resolve, reject) => {
    pusher.stderr!.on('data', (b: Buffer) => {
      said += b.toString();
      if (/Deploying web a/.test(said)) resolve();
    });
    void exited.then(() => reject(new Error(`git push ended before the deploy:\n${said}`)));
  });
  process.kill(-pusher.pid!, 'SIGKILL'); // git and its ssh: the connection is cut
  tt.is(await exited, 'SIGKILL');
  await until('HQ notices the pusher left', () => t.log.join('\n'), (log) => log.includes(`push ${s.stack}: the pusher left`));
  tt.is(await refOf(t.home.repo(s.stack)), (await control.releases(s.stack))[0]!.commit, 'nothing moved yet: the deploy waits');

  // Let a's new container become healthy: the deploy, the release and the ref go on without the pusher.
  const gated = await until('a v2 container', () => listContainers(docker, s.stack, 'a'), (cs) => cs.some((c) => c.release === 'v2' && c.ip));
  for (const c of gated.filter((x) => x.release === 'v2')) {
    tt.is(await until(`${c.name} listens`, () => post(`http://${c.ip}:8080/go`).catch(() => 0), (status) => status !== 0), 200);
  }
  const ended = await until('receive-pack ends', () => t.log.find((l) => l.startsWith(`push ${s.stack}: git receive-pack ended`)), (l) => l !== undefined);
  tt.is(ended, `push ${s.stack}: git receive-pack ended with exit code 0 after the pusher left; main ${v2.slice(0, 7)}`);

  tt.is(await refOf(t.home.repo(s.stack)), v2, 'the ref moved to v2');
  const releases = await control.releases(s.stack);
  tt.deepEqual(releases.map((r) => [r.version, r.commit]), [[2, v2], [1, releases[1]!.commit]]);
  const rows = await control.ps(s.stack);
  tt.deepEqual(rows.map((r) => [r.name, r.state, r.release]), [['a', 'running', 'v2'], ['b', 'running', 'v1']], JSON.stringify(rows));
  tt.is(await ask(s.stack, 'a', 'a v2'), 'a v2');
  tt.is(readFileSync(join(t.home.src(s.stack), 'a', 'server.js'), 'utf8'), serverJs('a v2', 'gate'), 'src is v2');
  tt.deepEqual(tasksOf(s.stack).map((x) => [x.version, x.state]), [[1, 'done'], [2, 'done']]);

  // The stack's push lock was let go: the next push goes through.
  const v3 = await s.commit('v3', ['a v3', 'ok'], ['b v1', 'ok']);
  const next = await push(t, s.repo, s.stack);
  tt.is(next.code, 0, next.stderr);
  tt.is(await refOf(t.home.repo(s.stack)), v3);
  tt.is(await ask(s.stack, 'a', 'a v3'), 'a v3');
});

test('a pusher that goes away before its pack has arrived changes nothing, and the push lock is let go', async (tt) => {
  const s = await smallStack('leaveearly');
  const v1 = await s.commit('v1', ['a v1', 'ok'], ['b v1', 'ok']);
  tt.is((await push(t, s.repo, s.stack)).code, 0);
  const v2 = await s.commit('v2', ['a v2', 'ok'], ['b v1', 'ok']);

  // git's side of a push by hand: the update command, then a pack cut off after its header.
  const conn = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    conn.once('ready', () => resolve()).once('error', reject)
      .connect({ host: '127.0.0.1', port: t.hq.sshPort, username: 'quarry', privateKey: readFileSync(t.key) });
  });
  const advertised = await new Promise<string>((resolve, reject) => {
    conn.exec(`git-receive-pack '/${s.stack}'`, (err, channel) => {
      if (err) return reject(err);
      let text = '';
      channel.on('data', (b: Buffer) => {
        text += b.toString('latin1');
        if (!text.endsWith('0000')) return;
        const command = `${v1} ${v2} refs/heads/main\n`;
        channel.write(`${(command.length + 4).toString(16).padStart(4, '0')}${command}0000`);
        channel.write(Buffer.concat([Buffer.from('PACK'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 6]), Buffer.from('xxxx')]));
        resolve(text);
      });
    });
  });
  tt.true(advertised.includes(`${v1} refs/heads/main`), advertised);
  conn.end();

  const ended = await until('receive-pack ends', () => t.log.find((l) => l.startsWith(`push ${s.stack}: git receive-pack ended`)), (l) => l !== undefined);
  tt.true(t.log.includes(`push ${s.stack}: the pusher left; the push carries on to its end without it (a pack not yet received is dropped)`));
  tt.regex(ended!, new RegExp(`after the pusher left; main ${v1.slice(0, 7)}$`));
  tt.is(await refOf(t.home.repo(s.stack)), v1, 'the ref did not move');
  tt.deepEqual(tasksOf(s.stack).map((x) => x.version), [1], 'no deploy was started');
  tt.deepEqual((await control.ps(s.stack)).map((r) => r.release), ['v1', 'v1']);

  const next = await push(t, s.repo, s.stack);
  tt.is(next.code, 0, next.stderr);
  tt.is(await refOf(t.home.repo(s.stack)), v2);
  tt.is(await ask(s.stack, 'a', 'a v2'), 'a v2');
});
