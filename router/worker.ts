import { EtcdRouteSource, type EtcdTls } from './etcd-route-source.js';
import type { RouteMap, RouteSource, RouteSourceStatus } from './route-source.js';
import { startRouter, type RouterOptions, type RouterStats } from './router.js';

/** Set in a worker's environment by the supervisor: the worker's brief, as JSON. */
export const WORKER_ENV = 'QUARRY_ROUTER_WORKER';

/** What a worker is told to run: the router's options as plain data. */
export interface WorkerBrief {
  slot: number;
  router: WorkerRouterOptions;
  /**
   * Take connections only once the routes are loaded. A worker started in place of one that
   * died waits so: the others serve meanwhile, and it must not answer 503 "not ready".
   */
  routesFirst: boolean;
  /**
   * The router's etcd TLS (its private key) is asked of the supervisor over the IPC channel
   * rather than put in this brief: a worker's environment is no place for a key.
   */
  etcdTls?: boolean;
}

/** With `etcd` endpoints: the routes come through the worker's own source, the TLS side's certificates from etcd directly. */
export type WorkerRouterOptions = Omit<RouterOptions, 'etcd' | 'routeSource' | 'admin' | 'accessLog' | 'log' | 'waitForRoutes' | 'etcdTls' | 'report' | 'onState'> & {
  etcd: string[];
  accessLog?: string;
};

/** Worker → supervisor. */
export type WorkerMessage =
  | { type: 'listening'; port: number; httpsPort: number | undefined }
  | { type: 'failed'; message: string; code?: string; address?: string; port?: number }
  | { type: 'applied'; revision: number | undefined; domains: number; at: number }
  | { type: 'stats'; id: number; stats: RouterStats }
  /** The retired backends still draining in this worker changed; sent before the `applied` of the same change. */
  | { type: 'draining'; urls: string[] }
  | { type: 'etcd-tls?' };

/** Supervisor → worker. */
export type SupervisorMessage = { type: 'stats'; id: number } | { type: 'stop'; graceMs: number } | { type: 'etcd-tls'; tls: EtcdTls | undefined };

/** The etcd TLS of the router, asked of the supervisor (see `WorkerBrief.etcdTls`). */
function askEtcdTls(send: (message: WorkerMessage) => void): Promise<EtcdTls | undefined> {
  return new Promise((resolve) => {
    const answer = (message: SupervisorMessage): void => {
      if (message.type !== 'etcd-tls') return;
      process.off('message', answer);
      resolve(message.tls);
    };
    process.on('message', answer);
    send({ type: 'etcd-tls?' });
  });
}

/**
 * A route source passed on to the router, that says after each change the router applied
 * which revision that was. It can be started before the router, to load the routes first.
 */
export class ReportingRouteSource implements RouteSource {
  private latest: RouteMap | undefined;
  private listener: ((routes: RouteMap) => void) | undefined;
  private started: Promise<void> | undefined;

  constructor(private readonly inner: RouteSource, private readonly applied: (revision: number | undefined, domains: number) => void) {}

  /** Starts the inner source; resolves once the first routes arrived. */
  load(): Promise<void> {
    this.started ??= this.inner.start((routes) => {
      this.latest = routes;
      this.deliver(routes);
    });
    return this.started;
  }

  async start(onRoutes: (routes: RouteMap) => void): Promise<void> {
    this.listener = onRoutes;
    if (this.latest) this.deliver(this.latest);
    await this.load();
  }

  status(): RouteSourceStatus {
    return this.inner.status();
  }

  async close(): Promise<void> {
    this.listener = undefined;
    await this.inner.close();
  }

  private deliver(routes: RouteMap): void {
    if (!this.listener) return;
    this.listener(routes);
    this.applied(this.inner.status().revision, routes.size);
  }
}

/**
 * The body of a `quarry router` worker (a node:cluster worker): its own router on the shared
 * listening socket, following etcd itself, reporting to the supervisor what it applied.
 */
export async function runRouterWorker(log: (line: string) => void): Promise<number> {
  const brief = JSON.parse(process.env[WORKER_ENV]!) as WorkerBrief;
  const send = (message: WorkerMessage): void => {
    if (process.connected) process.send!(message);
  };
  const etcdTls = brief.etcdTls ? await askEtcdTls(send) : undefined;
  const source = new ReportingRouteSource(new EtcdRouteSource({ hosts: brief.router.etcd, ...(etcdTls && { tls: etcdTls }), log }), (revision, domains) =>
    send({ type: 'applied', revision, domains, at: Date.now() }));
  if (brief.routesFirst) await source.load();
  let draining: string[] = [];
  // Told to the supervisor before the `applied` that goes with it, so that a revision it
  // learns never comes without the backends that still drain at it.
  const onState = (state: { draining: string[] }): void => {
    if (state.draining.length === draining.length && state.draining.every((url, i) => url === draining[i])) return;
    draining = state.draining;
    send({ type: 'draining', urls: draining });
  };
  let router;
  try {
    router = await startRouter({ ...brief.router, ...(etcdTls && { etcdTls }), routeSource: source, waitForRoutes: false, log, onState });
  } catch (err) {
    const { code, address, port } = err as NodeJS.ErrnoException & { address?: string; port?: number };
    send({ type: 'failed', message: (err as Error).message, code, address, port });
    await source.close();
    return 1;
  }
  send({ type: 'listening', port: router.port, httpsPort: router.httpsPort });
  const running = router;
  return new Promise<number>((resolve) => {
    const stop = (graceMs?: number): void => {
      void running.close(graceMs).then(() => resolve(0));
    };
    process.on('message', (message: SupervisorMessage) => {
      if (message.type === 'stats') send({ type: 'stats', id: message.id, stats: running.stats() });
      else if (message.type === 'stop') stop(message.graceMs);
    });
    // Ctrl-C reaches the whole process group: the supervisor stops the workers in order,
    // so a worker lets SIGINT pass. SIGTERM sent to a worker alone stops it gracefully.
    process.on('SIGINT', () => undefined);
    process.once('SIGTERM', () => stop());
  });
}
