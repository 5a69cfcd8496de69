/**
 * `npm run bench:router`: requests per second and p99 latency of quarry's router against
 * nginx (Debian's nginx-light, keep-alive upstream) proxying the same backend, measured side
 * by side with wrk in one run, rounds alternating. Also http-proxy-3 in the same harness, the
 * library the router could have been built on.
 *
 * Every proxy runs BENCH_WORKERS processes (default: the machine's cores, as `quarry router`
 * does): nginx `worker_processes`, the Node ones node:cluster workers sharing the listening
 * socket, as `quarry router`'s workers do. The backend nginx runs as many.
 *
 * The backend is a second nginx answering `return 200` from one worker: native, so that it
 * is not the bottleneck. A Node backend tops out near a Node proxy's own rate and would make
 * any proxy in front of it look as fast as nginx.
 *
 * `nodeDirect` is no proxy at all: Node's own HTTP server answering like the backend. It is
 * the ceiling of any proxy built on Node's HTTP server, printed so the ratio can be read.
 *
 * The last line printed is JSON: {routerRps, nginxRps, routerP99Ms, nginxP99Ms, ratio, workers, …}.
 * Every process listens on 127.0.0.1 only; traffic goes to 127.0.0.1 only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, Agent } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../home/index.js';

const HOST = 'bench.quarry.test';
const env = process.env;
const DURATION_S = Number(env.BENCH_DURATION_S ?? 8);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 64);
const THREADS = Number(env.BENCH_THREADS ?? 1);
const BODY = 'x'.repeat(Number(env.BENCH_BODY_BYTES ?? 128));
const WORKERS = Number(env.BENCH_WORKERS ?? availableParallelism());

// ---- child mode: one proxy under test, in a process of its own -------------------------

async function serveRouter(port: number, backend: string): Promise<void> {
  const { startRouter, StaticRouteSource } = await import('../router/index.js');
  const router = await startRouter({
    port, host: '127.0.0.1',
    routeSource: new StaticRouteSource({ [HOST]: { web1: backend } }),
  });
  process.stdout.write(`ready ${router.port}\n`);
}

async function serveHttpProxy3(port: number, backend: string): Promise<void> {
  const { createProxyServer } = await import('http-proxy-3');
  const agent = new Agent({ keepAlive: true, maxFreeSockets: 1024, scheduling: 'lifo' });
  const proxy = createProxyServer({ agent, xfwd: true });
  const routes = new Map([[HOST, backend]]);
  proxy.on('error', (_err, _req, res) => {
    const r = res as import('node:http').ServerResponse;
    if (!r.headersSent) r.writeHead(502);
    r.end();
  });
  const server = createServer((req, res) => {
    const target = routes.get((req.headers.host ?? '').split(':')[0]!.toLowerCase());
    if (!target) {
      res.writeHead(404);
      res.end();
      return;
    }
    proxy.web(req, res, { target });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
}

/** Node's own HTTP server answering by itself: the ceiling of any proxy built on it. */
async function serveNodeDirect(port: number): Promise<void> {
  const body = `${BODY}\n`;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
}

// ---- driver ------------------------------------------------------------------------------

function ensureTools(): void {
  const missing = ['wrk', 'nginx'].filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: run as root, or apt-get install -y wrk nginx-light`);
  console.log(`installing wrk and nginx-light (missing: ${missing.join(', ')})`);
  const install = () => execFileSync('apt-get', ['install', '-y', 'wrk', 'nginx-light'], {
    stdio: 'inherit', env: { ...env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  try {
    install();
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'inherit' });
    install();
  }
}

const NGINX = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v nginx || echo /usr/sbin/nginx']).toString().trim();
  } catch {
    return '/usr/sbin/nginx';
  }
})();

interface Proc {
  name: string;
  child: ChildProcess;
  log: () => string;
}

function track(name: string, child: ChildProcess): Proc {
  let log = '';
  const keep = (chunk: Buffer) => { log = (log + chunk.toString()).slice(-4000); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { name, child, log: () => log };
}

async function waitForPort(proc: Proc, port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited: ${proc.log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new (require_net().Socket)();
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${proc.name} did not listen on ${port}: ${proc.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
import * as net from 'node:net';
function require_net() { return net; }

async function startNginx(dir: string, name: string, server: string, upstream = ''): Promise<Proc> {
  const conf = join(dir, `${name}.conf`);
  await writeFile(conf, `
worker_processes ${WORKERS};
daemon off;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}.error.log`)} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/${name}-body;
  proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-fastcgi;
  uwsgi_temp_path ${dir}/${name}-uwsgi;
  scgi_temp_path ${dir}/${name}-scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  ${upstream}
  server { ${server} }
}
`);
  return track(name, spawn(NGINX, ['-c', conf, '-p', dir, '-e', join(dir, `${name}.error.log`)], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

interface Result {
  rps: number;
  /** CPU time the proxy's processes spent per request, in microseconds. */
  cpuUsPerRequest?: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function toMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 'ms' ? value : match[2] === 's' ? value * 1000 : value * 60_000;
}

function wrk(port: number, seconds: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', [
      `-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency',
      '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const p50 = /\n\s+50%\s+(\S+)/.exec(out);
      const p99 = /\n\s+99%\s+(\S+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      if (code !== 0 || !rps || !p99 || !p50) {
        reject(new Error(`wrk failed (${code}):\n${out}`));
        return;
      }
      const errors = Number(non2xx?.[1] ?? 0) +
        (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
      resolve({ rps: Number(rps[1]), p50Ms: toMs(p50[1]!), p99Ms: toMs(p99[1]!), errors });
    });
  });
}

/** CPU seconds used so far by a process and its children (Linux /proc; 0 elsewhere). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ ticks
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return own + children.reduce((sum, child) => sum + cpuSeconds(child), 0);
  } catch {
    return 0;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function stop(proc: Proc): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const gone = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

async function main(): Promise<void> {
  ensureTools();
  const dir = await mkdtemp(join(tmpdir(), 'quarry-bench-router-'));
  const procs: Proc[] = [];
  const cleanup = async () => {
    await Promise.all(procs.map(stop));
    await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const backendPort = await freePort();
    const backend = await startNginx(dir, 'backend', `
    listen 127.0.0.1:${backendPort} reuseport backlog=4096;
    location / { default_type text/plain; return 200 "${BODY}\\n"; }`);
    procs.push(backend);
    await waitForPort(backend, backendPort);
    const backendUrl = `http://127.0.0.1:${backendPort}`;

    const nginxPort = await freePort();
    const nginx = await startNginx(dir, 'proxy', `
    listen 127.0.0.1:${nginxPort} backlog=4096;
    location / {
      proxy_pass http://quarry_backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_buffering on;
    }`, `upstream quarry_backend { server 127.0.0.1:${backendPort}; keepalive 256; keepalive_requests 1000000; }`);
    procs.push(nginx);
    await waitForPort(nginx, nginxPort);

    const self = fileURLToPath(import.meta.url);
    const pids = new Map<number, number | undefined>([[nginxPort, nginx.child.pid]]);
    const startNode = async (mode: string): Promise<number> => {
      const port = await freePort();
      // BENCH_CPU_PROF_DIR: a `node --cpu-prof` profile of the router's processes (every worker).
      const profile = mode === 'router' && env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_CPU_PROF_DIR}`] : [];
      const proc = track(mode, spawn(process.execPath, [...profile, '--import', 'tsx', self, '--serve', mode, String(port), backendUrl], {
        stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, NODE_ENV: 'production' },
      }));
      procs.push(proc);
      await waitForPort(proc, port);
      pids.set(port, proc.child.pid);
      return port;
    };
    const targets: Array<{ name: string; port: number }> = [
      { name: 'router', port: await startNode('router') },
      { name: 'nginx', port: nginxPort },
      { name: 'httpProxy3', port: await startNode('http-proxy-3') },
      { name: 'nodeDirect', port: await startNode('node-direct') },
    ];
    if (env.BENCH_ONLY) {
      const only = new Set(env.BENCH_ONLY.split(','));
      targets.splice(0, targets.length, ...targets.filter((t) => only.has(t.name)));
    }

    console.log(`wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION_S}s, ${ROUNDS} rounds, ${WORKERS} worker(s) per proxy, ` +
      `backend: nginx return 200 (${BODY.length + 1} bytes)`);
    for (const target of targets) await wrk(target.port, 2); // warm up: JIT, connection pools
    const results = new Map<string, Result[]>(targets.map((t) => [t.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order, so no target always runs in the same slot.
      const order = round % 2 ? targets : [...targets].reverse();
      for (const target of order) {
        const cpuBefore = cpuSeconds(pids.get(target.port));
        const result = await wrk(target.port, DURATION_S);
        const cpu = cpuSeconds(pids.get(target.port)) - cpuBefore;
        if (cpu > 0) result.cpuUsPerRequest = (cpu * 1e6) / (result.rps * DURATION_S);
        results.get(target.name)!.push(result);
        console.log(`round ${round} ${target.name.padEnd(10)} ${result.rps.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  errors ${result.errors}` +
          `${result.cpuUsPerRequest ? `  cpu ${result.cpuUsPerRequest.toFixed(1)} µs/req` : ''}`);
      }
    }
    const summary: Record<string, number | string> = {};
    for (const [name, list] of results) {
      summary[`${name}Rps`] = Math.round(median(list.map((r) => r.rps)));
      summary[`${name}P50Ms`] = median(list.map((r) => r.p50Ms));
      summary[`${name}P99Ms`] = median(list.map((r) => r.p99Ms));
      summary[`${name}Errors`] = list.reduce((sum, r) => sum + r.errors, 0);
      const cpu = list.map((r) => r.cpuUsPerRequest).filter((us): us is number => us !== undefined);
      if (cpu.length) summary[`${name}CpuUsPerRequest`] = Math.round(median(cpu) * 10) / 10;
    }
    const rps = (name: string) => summary[`${name}Rps`] as number | undefined;
    if (rps('router') !== undefined && rps('nginx')) summary.ratio = Math.round((rps('router')! / rps('nginx')!) * 1000) / 1000;
    for (const other of ['httpProxy3', 'nodeDirect']) {
      if (rps(other) !== undefined && rps('nginx')) summary[`${other}Ratio`] = Math.round((rps(other)! / rps('nginx')!) * 1000) / 1000;
    }
    Object.assign(summary, { workers: WORKERS, connections: CONNECTIONS, threads: THREADS, durationS: DURATION_S, rounds: ROUNDS, backend: 'nginx return 200' });
    console.log(JSON.stringify(summary));
  } finally {
    await cleanup();
  }
}

const serveAt = process.argv.indexOf('--serve');
if (serveAt >= 0) {
  const [mode, port, backend] = process.argv.slice(serveAt + 1);
  const serve = mode === 'router' ? serveRouter : mode === 'http-proxy-3' ? serveHttpProxy3 : serveNodeDirect;
  if (WORKERS > 1 && cluster.isPrimary) {
    // The workers share the port through the primary, as `quarry router`'s do. The driver's
    // two-second warm-up runs after the port opens, by when every worker listens.
    for (let i = 0; i < WORKERS; i++) cluster.fork();
    // Workers exit on their own (writing any profile) once the primary is gone.
    process.once('SIGTERM', () => process.exit(0));
  } else {
    await serve(Number(port), backend!);
  }
} else {
  await main();
}
