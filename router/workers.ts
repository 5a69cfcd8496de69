import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LatencySummary } from './latency.js';
import type { RouterStats } from './router.js';
import type { DomainStats } from './stats.js';
import { etcdClient, type EtcdTls } from './etcd-route-source.js';
import { RouterReporter, routerRecordKey, type RouterReportOptions } from './report.js';
import type { UpstreamStats } from './upstream.js';
import { WORKER_ENV, type SupervisorMessage, type WorkerBrief, type WorkerMessage, type WorkerRouterOptions } from './worker.js';

export interface RouterWorkersOptions {
  /** How many workers share the listening socket (at least 2; 1 is `startRouter` alone). */
  workers: number;
  router: WorkerRouterOptions;
  /** TLS to etcd with a client certificate: handed to each worker over IPC when it asks, never in its environment. */
  etcdTls?: EtcdTls;
  /** The supervisor's `/health`, `/stats` and `/workers`; none when absent. */
  admin?: { port: number; host?: string };
  /**
   * The supervisor keeps `/quarry/routers/<id>` in etcd for all its workers (router/report.ts):
   * the lowest revision the workers with routes applied, the backends any still drains.
   */
  report?: RouterReportOptions;
  log: (line: string) => void;
}

/** One worker as the supervisor knows it. */
export interface WorkerState {
  slot: number;
  pid: number | undefined;
  /** Times this slot's worker died and was started again. */
  restarts: number;
  listening: boolean;
  /** The etcd revision of the routes it applied last; null before any. */
  revision: number | null;
  /** When (epoch ms) it applied them. */
  appliedAt: number | null;
  domains: number;
  /** Retired backends (URLs) it still has requests in flight on. */
  draining: string[];
}

export interface RouterWorkers {
  port: number;
  httpsPort: number | undefined;
  adminPort: number | undefined;
  /** Resolves when every worker has loaded the routes. */
  ready: Promise<void>;
  workers(): WorkerState[];
  /** The lowest revision the workers with routes applied: a route change at or below it is in force in every one. */
  revision(): number | null;
  stats(): Promise<RouterStats & { workers: Array<WorkerState & { stats: RouterStats | null }> }>;
  /** Stops every worker (each finishes its requests in flight, up to `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/** A worker failed to listen at startup: the error it met, so the caller can say which. */
export class WorkerStartError extends Error {
  constructor(message: string, readonly code?: string, readonly address?: string, readonly port?: number) {
    super(message);
  }
}

/** Restarting a worker that lived less than this long waits a moment: no crash loop at full speed. */
const QUICK_DEATH_MS = 1000;
const STATS_TIMEOUT_MS = 2000;

interface Slot {
  state: WorkerState;
  worker: Worker | undefined;
  startedAt: number;
}

/**
 * Runs `quarry router` as `options.workers` node:cluster workers sharing the listening socket,
 * each following etcd itself. A worker that dies is started again (it takes connections only
 * once it has the routes) while the others keep serving. The supervisor holds the admin port:
 * `/workers` shows the revision each worker applied, and `/health?revision=V` answers 200 only
 * once every worker is at V or later.
 */
export async function startRouterWorkers(options: RouterWorkersOptions): Promise<RouterWorkers> {
  if (!cluster.isPrimary) throw new Error('startRouterWorkers runs in the primary process');
  const { log } = options;
  if (options.report) routerRecordKey(options.report.id);
  const slots: Slot[] = [];
  let reporter: RouterReporter | undefined;
  let reporterClose: (() => Promise<void>) | undefined;
  let closing = false;
  let port: number | undefined;
  let httpsPort: number | undefined;
  let nextRequest = 0;
  const pending = new Map<number, (stats: RouterStats) => void>();

  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => { markReady = resolve; });
  const allApplied = () => slots.length === options.workers && slots.every((s) => s.state.appliedAt !== null);

  let failStartup: (err: Error) => void = () => undefined;
  let listeningAll: () => void = () => undefined;
  const startup = new Promise<void>((resolve, reject) => { listeningAll = resolve; failStartup = reject; });
  let started = false;

  const fork = (slot: Slot, routesFirst: boolean): void => {
    const brief: WorkerBrief = { slot: slot.state.slot, router: options.router, routesFirst, ...(options.etcdTls && { etcdTls: true }) };
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(brief) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    Object.assign(slot.state, { pid: worker.process.pid, listening: false, revision: null, appliedAt: null, domains: 0, draining: [] });
    worker.on('message', (message: WorkerMessage) => {
      if (slot.worker !== worker) return;
      if (message.type === 'listening') {
        port = message.port;
        httpsPort = message.httpsPort;
        slot.state.listening = true;
        if (!started && slots.every((s) => s.state.listening)) listeningAll();
        if (started) log(`worker ${slot.state.slot} (pid ${slot.state.pid}) is serving again`);
      } else if (message.type === 'applied') {
        slot.state.revision = message.revision ?? null;
        slot.state.appliedAt = message.at;
        slot.state.domains = message.domains;
        if (allApplied()) markReady();
        reporter?.changed();
      } else if (message.type === 'draining') {
        slot.state.draining = message.urls;
        reporter?.changed();
      } else if (message.type === 'failed') {
        if (!started) failStartup(new WorkerStartError(message.message, message.code, message.address, message.port));
        else log(`worker ${slot.state.slot} (pid ${slot.state.pid}) cannot listen: ${message.message}`);
      } else if (message.type === 'stats') {
        pending.get(message.id)?.(message.stats);
      } else if (message.type === 'etcd-tls?') {
        const answer: SupervisorMessage = { type: 'etcd-tls', tls: options.etcdTls };
        if (worker.isConnected()) worker.send(answer);
      }
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      slot.state.listening = false;
      // What it had in flight died with it; its successor counts from its own routes.
      Object.assign(slot.state, { revision: null, draining: [] });
      reporter?.changed();
      if (closing) return;
      if (!started) {
        failStartup(new WorkerStartError(`router worker ${slot.state.slot} exited (${signal ?? `code ${code}`}) while starting`));
        return;
      }
      const lived = Date.now() - slot.startedAt;
      const wait = lived < QUICK_DEATH_MS ? QUICK_DEATH_MS : 0;
      slot.state.restarts++;
      log(`worker ${slot.state.slot} (pid ${worker.process.pid}) died (${signal ?? `exit code ${code}`}) after ${lived} ms; ` +
        `starting another${wait ? ` in ${wait} ms` : ''}; the other workers keep serving`);
      setTimeout(() => { if (!closing) fork(slot, true); }, wait).unref();
    });
  };

  const stopAll = async (graceMs: number): Promise<void> => {
    closing = true;
    await Promise.all(slots.map(async (slot) => {
      const worker = slot.worker;
      if (!worker || worker.isDead()) return;
      const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      const stop: SupervisorMessage = { type: 'stop', graceMs };
      if (worker.isConnected()) worker.send(stop);
      else worker.kill('SIGKILL');
      const timer = setTimeout(() => worker.process.kill('SIGKILL'), graceMs + 5000);
      await gone;
      clearTimeout(timer);
    }));
  };

  for (let i = 0; i < options.workers; i++) {
    const slot: Slot = {
      state: { slot: i, pid: undefined, restarts: 0, listening: false, revision: null, appliedAt: null, domains: 0, draining: [] },
      worker: undefined, startedAt: 0,
    };
    slots.push(slot);
  }
  // The first workers listen at once and answer 503 until the routes load, as one process
  // does: a router host may boot before etcd, and its health should say so.
  for (const slot of slots) fork(slot, false);
  try {
    await startup;
  } catch (err) {
    await stopAll(0);
    throw err;
  }
  started = true;

  const workers = (): WorkerState[] => slots.map((s) => ({ ...s.state }));
  // A worker with no routes yet takes no connections (one started again) or answers 503 to
  // all (a first one, before etcd answered): only the others say what is in force.
  const revision = (): number | null => {
    const revisions = slots.map((s) => s.state.revision).filter((r): r is number => r !== null);
    return revisions.length === 0 ? null : Math.min(...revisions);
  };
  if (options.report) {
    const client = etcdClient(options.router.etcd, options.etcdTls);
    const record = new RouterReporter(client, options.report, () => ({
      revision: revision(),
      draining: [...new Set(slots.flatMap((s) => s.state.draining))].sort(),
    }), log);
    reporter = record;
    reporterClose = async () => {
      await record.close();
      client.close();
    };
  }
  const statsOf = (slot: Slot): Promise<RouterStats | null> => {
    const worker = slot.worker;
    if (!worker || !worker.isConnected() || !slot.state.listening) return Promise.resolve(null);
    const id = nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { pending.delete(id); resolve(null); }, STATS_TIMEOUT_MS);
      pending.set(id, (stats) => { clearTimeout(timer); pending.delete(id); resolve(stats); });
      const ask: SupervisorMessage = { type: 'stats', id };
      worker.send(ask);
    });
  };
  const stats = async () => {
    const each = await Promise.all(slots.map(statsOf));
    return { ...mergeStats(each.filter((s) => s !== null)), workers: slots.map((s, i) => ({ ...s.state, stats: each[i] ?? null })) };
  };

  let admin: Server | undefined;
  let adminPort: number | undefined;
  if (options.admin) {
    admin = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://admin');
      const json = (status: number, body: unknown): void => {
        res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end(JSON.stringify(body, null, 2) + '\n');
      };
      if (url.pathname === '/health') {
        void stats().then((s) => {
          const at = revision();
          const wanted = url.searchParams.get('revision');
          const reached = wanted === null || (at !== null && at >= Number(wanted));
          const ok = s.ready && reached;
          json(ok ? 200 : 503, {
            ok, routesLoaded: s.ready, etcdConnected: s.routes.connected, revision: at,
            workers: slots.length, serving: slots.filter((slot) => slot.state.listening).length,
          });
        });
      } else if (url.pathname === '/stats') void stats().then((s) => json(200, s));
      else if (url.pathname === '/workers') json(200, { revision: revision(), workers: workers() });
      else json(404, { error: 'not found: try /health, /stats or /workers' });
    });
    const server = admin;
    try {
      adminPort = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.admin!.port, options.admin!.host ?? '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
      });
    } catch (err) {
      await stopAll(0);
      await reporterClose?.();
      throw err;
    }
  }

  let closed: Promise<void> | undefined;
  return {
    port: port!,
    httpsPort,
    adminPort,
    ready,
    workers,
    revision,
    stats,
    close(graceMs = 10_000) {
      closed ??= (async () => {
        await stopAll(graceMs);
        await reporterClose?.();
        if (admin) {
          const server = admin;
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
      })();
      return closed;
    },
  };
}

/**
 * The serving workers' stats as one router's: counts summed; a percentile is the highest of the
 * workers' (percentiles do not add up, and the highest is the honest bound); a backend is
 * retired once every worker retired it, in flight summed.
 */
export function mergeStats(present: readonly RouterStats[]): RouterStats {
  const revisions = present.map((s) => s.routes.revision);
  const merged: RouterStats = {
    ready: present.length > 0 && present.every((s) => s.ready),
    routes: {
      synced: present.length > 0 && present.every((s) => s.routes.synced),
      connected: present.length > 0 && present.every((s) => s.routes.connected),
      revision: revisions.length === 0 || revisions.some((r) => r === undefined) ? undefined : Math.min(...(revisions as number[])),
      domains: Math.max(0, ...present.map((s) => s.routes.domains)),
    },
    totals: { requests: 0, errors: 0, unknown: 0, inFlight: 0 },
    domains: {},
    backends: [],
  };
  const backends = new Map<string, UpstreamStats>();
  for (const s of present) {
    for (const key of ['requests', 'errors', 'unknown', 'inFlight'] as const) merged.totals[key] += s.totals[key];
    for (const [name, d] of Object.entries(s.domains)) merged.domains[name] = addDomain(merged.domains[name], d);
    for (const b of s.backends) {
      const seen = backends.get(b.url);
      backends.set(b.url, seen
        ? { url: b.url, inFlight: seen.inFlight + b.inFlight, tunnels: seen.tunnels + b.tunnels, down: seen.down || b.down, retired: seen.retired && b.retired }
        : { ...b });
    }
  }
  merged.backends = [...backends.values()];
  merged.domains = Object.fromEntries(Object.entries(merged.domains).sort(([a], [b]) => a.localeCompare(b)));
  return merged;
}

function addDomain(a: DomainStats | undefined, b: DomainStats): DomainStats {
  if (!a) return structuredClone(b);
  const latency: LatencySummary = {
    count: a.latency.count + b.latency.count,
    meanMs: a.latency.count + b.latency.count === 0 ? 0
      : Math.round(((a.latency.meanMs * a.latency.count + b.latency.meanMs * b.latency.count) / (a.latency.count + b.latency.count)) * 1000) / 1000,
    p50Ms: Math.max(a.latency.p50Ms, b.latency.p50Ms),
    p90Ms: Math.max(a.latency.p90Ms, b.latency.p90Ms),
    p99Ms: Math.max(a.latency.p99Ms, b.latency.p99Ms),
    maxMs: Math.max(a.latency.maxMs, b.latency.maxMs),
  };
  const responses = { ...a.responses };
  for (const key of Object.keys(responses) as Array<keyof DomainStats['responses']>) responses[key] += b.responses[key];
  return { requests: a.requests + b.requests, errors: a.errors + b.errors, responses, upgrades: a.upgrades + b.upgrades, latency };
}
