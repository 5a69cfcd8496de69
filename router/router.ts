import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Etcd3 } from 'etcd3';
import { AccessLog } from './access-log.js';
import { EtcdRouteSource, etcdClient, type EtcdTls } from './etcd-route-source.js';
import { forward, sendPage, type ForwardSettings } from './forward.js';
import { RouterTls, type PlainAnswer } from './https.js';
import { badTargetPage, notReadyPage, unknownDomainPage, type Page } from './pages.js';
import type { RouteSource, RouteSourceStatus } from './route-source.js';
import { RouterReporter, routerRecordKey, type RouterReportOptions, type RouterReportState } from './report.js';
import { RouteTable } from './route-table.js';
import { RouterCounters, type DomainStats } from './stats.js';
import { absoluteTarget } from './target.js';
import { TrustedProxies } from './trusted-proxies.js';
import { forwardUpgrade, writePage } from './upgrade.js';
import type { UpstreamStats } from './upstream.js';

export interface RouterOptions {
  /** Port for web traffic; 0 picks a free one (see `Router.port`). */
  port?: number;
  host?: string;
  /** Where routes come from: etcd endpoints or client, or any RouteSource. One is needed. */
  etcd?: string[] | Etcd3;
  /** With `etcd` endpoints: TLS to them, with a client certificate (a router host on a grid). */
  etcdTls?: EtcdTls;
  routeSource?: RouteSource;
  /**
   * Port for HTTPS (HTTP/2 and HTTP/1.1), certificates by SNI from etcd (`/quarry/certs/`);
   * 0 picks a free one (see `Router.httpsPort`). Absent: no HTTPS. Needs `etcd`.
   */
  httpsPort?: number;
  /** A separate listener for `/health` and `/stats`; none when absent. */
  admin?: { port: number; host?: string };
  /** How long a backend that refused a connection is skipped (ms); default 5000. */
  backendDownMs?: number;
  connectTimeoutMs?: number;
  /** How long a backend may be silent mid-request before a 504 (ms); default 60000. */
  upstreamTimeoutMs?: number;
  /** How long an idle client connection is kept open (ms); default 30000. */
  keepAliveTimeoutMs?: number;
  /**
   * Addresses and CIDR blocks (`10.0.0.0/8`, `::1`) of proxies in front of the router whose
   * X-Forwarded-For is appended to and whose X-Forwarded-Proto and -Host are kept. Every other
   * client's X-Forwarded-* are replaced by what the router saw. Default none.
   */
  trustedProxies?: readonly string[];
  /** How long a backend may take to answer an upgrade before the client gets a 504 (ms); default 30000. */
  upgradeTimeoutMs?: number;
  /** Upgraded connections (WebSockets) open at once, beyond which an upgrade gets a 503; default 10000. */
  maxTunnels?: number;
  /**
   * One line per request (CLF, then backend and milliseconds): `stderr`, a file path, or a
   * function taking each line (ending in a newline). Off when absent.
   */
  accessLog?: string | ((line: string) => void);
  /** Resolve only once the routes are loaded (default true); else serve 503 until then. */
  waitForRoutes?: boolean;
  /**
   * Keep a record of what this router applied in etcd, `/quarry/routers/<id>` under a lease of
   * its own (router/report.ts): DEPLOY waits on it before it stops old web containers. Needs `etcd`.
   */
  report?: RouterReportOptions;
  /**
   * Called after the routes were applied and after a retired backend drained (a worker tells
   * its supervisor with it). Called synchronously, before anything else learns of the change.
   */
  onState?: (state: RouterReportState) => void;
  log?: (line: string) => void;
}

export interface RouterStats {
  /** The routes are loaded; until then requests get 503. */
  ready: boolean;
  routes: RouteSourceStatus & { domains: number };
  totals: { requests: number; errors: number; unknown: number; inFlight: number };
  domains: Record<string, DomainStats>;
  /** Every backend in use or still finishing requests after its route went. */
  backends: UpstreamStats[];
}

export interface Router {
  port: number;
  adminPort: number | undefined;
  /** Where HTTPS listens, when it does. */
  httpsPort: number | undefined;
  /** Resolves when the routes are first loaded. */
  ready: Promise<void>;
  stats(): RouterStats;
  /** The routed domains, sorted. */
  domains(): string[];
  /** The etcd revision of the routes applied (null before any) and the retired backends still draining. */
  state(): RouterReportState;
  /** Stops taking requests, lets those in flight finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Starts the HTTP router: requests are sent by Host to the backends of the matching route,
 * kept live from the route source (etcd under `/quarry/routes/`). HQ embeds this in small
 * mode; `quarry router` runs it alone.
 */
export async function startRouter(options: RouterOptions): Promise<Router> {
  const log = options.log ?? (() => undefined);
  if (options.report) routerRecordKey(options.report.id);
  let source: RouteSource;
  if (options.routeSource) source = options.routeSource;
  else if (Array.isArray(options.etcd)) source = new EtcdRouteSource({ hosts: options.etcd, ...(options.etcdTls && { tls: options.etcdTls }), log });
  else if (options.etcd) source = new EtcdRouteSource({ client: options.etcd, log });
  else throw new Error('startRouter needs etcd or a routeSource');

  const counters = new RouterCounters();
  const accessLog = options.accessLog === undefined ? undefined : new AccessLog(options.accessLog);
  const settings: ForwardSettings = {
    counters,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    upstreamTimeoutMs: options.upstreamTimeoutMs ?? 60_000,
    trustedProxies: new TrustedProxies(options.trustedProxies ?? []),
    upgradeTimeoutMs: options.upgradeTimeoutMs ?? 30_000,
    maxTunnels: options.maxTunnels ?? 10_000,
    tunnels: 0,
    accessLog,
    log,
  };
  let reporter: RouterReporter | undefined;
  const state = (): RouterReportState => ({ revision: loaded ? (source.status().revision ?? null) : null, draining: table.drainingUrls() });
  const stateChanged = (): void => {
    reporter?.changed();
    options.onState?.(state());
  };
  const table = new RouteTable({
    downMs: options.backendDownMs ?? 5000,
    idleSocketMs: 4000,
    connectTimeoutMs: settings.connectTimeoutMs,
    upstreamTimeoutMs: settings.upstreamTimeoutMs,
    ...((options.report || options.onState) && { onDrained: stateChanged }),
  });
  let loaded = false;

  /** A page the router answers itself, logged with no backend. */
  const answer = (req: IncomingMessage, res: ServerResponse, page: Page): void => {
    if (accessLog) {
      const started = performance.now();
      const client = req.socket.remoteAddress;
      res.once('close', () => accessLog.request(client, req, res.headersSent ? res.statusCode : 0, Buffer.byteLength(page.body),
        undefined, performance.now() - started));
    }
    sendPage(res, page);
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    let host = req.headers.host;
    const target = absoluteTarget(req.url!);
    if (target === null) return answer(req, res, badTargetPage());
    if (target) {
      host = target.host;
      req.url = target.path;
    }
    const pool = table.lookup(host);
    if (pool) {
      forward(settings, pool, req, res, target?.host);
      return;
    }
    counters.unknown++;
    answer(req, res, loaded ? unknownDomainPage(host) : notReadyPage());
  };
  let tls: RouterTls | undefined;
  /** Plain HTTP: ACME answers and redirects to HTTPS first (https.ts), then routing. */
  const onPlainRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const own: PlainAnswer | undefined = tls?.plainAnswer(req);
    if (!own) return onRequest(req, res);
    const started = performance.now();
    const client = req.socket.remoteAddress;
    res.writeHead(own.status, { ...own.headers, 'Content-Length': String(Buffer.byteLength(own.body)), 'Cache-Control': 'no-store' });
    res.end(own.body);
    accessLog?.request(client, req, own.status, Buffer.byteLength(own.body), undefined, performance.now() - started);
  };
  const server = createServer({ keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000 }, onPlainRequest);
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const refused = (page: Page): void => {
      accessLog?.request(req.socket.remoteAddress, req, page.status, undefined, undefined, 0);
      socket.on('error', () => socket.destroy());
      writePage(socket, page);
    };
    let host = req.headers.host;
    const target = absoluteTarget(req.url!);
    if (target === null) return refused(badTargetPage());
    if (target) {
      host = target.host;
      req.url = target.path;
    }
    const pool = table.lookup(host);
    if (pool) {
      forwardUpgrade(settings, pool, req, socket, head, target?.host);
      return;
    }
    counters.unknown++;
    refused(loaded ? unknownDomainPage(host) : notReadyPage());
  };
  server.on('upgrade', onUpgrade);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const stats = (): RouterStats => {
    const counted = counters.snapshot();
    const backends = table.upstreamStats();
    return {
      ready: loaded,
      routes: { ...source.status(), domains: table.domains().length },
      totals: { ...counted.totals, inFlight: backends.reduce((sum, b) => sum + b.inFlight, 0) },
      domains: counted.domains,
      backends,
    };
  };

  let admin: Server | undefined;
  let adminPort: number | undefined;
  const port = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  // The TLS side reads certificates and ACME answers from etcd, with its own client when given endpoints.
  const tlsClient = Array.isArray(options.etcd) ? etcdClient(options.etcd, options.etcdTls) : options.etcd;
  try {
    if (options.httpsPort !== undefined && !tlsClient) throw new Error('startRouter: httpsPort needs etcd (the certificates are kept there)');
    if (options.report && !tlsClient) throw new Error('startRouter: report needs etcd (the record is kept there)');
    if (tlsClient) {
      tls = await RouterTls.start({
        client: tlsClient, port: options.httpsPort, host: options.host ?? '127.0.0.1',
        keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 30_000, onRequest, onUpgrade, log,
      });
    }
    if (options.admin) {
      admin = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        const json = (status: number, body: unknown): void => {
          const text = JSON.stringify(body, null, 2) + '\n';
          res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
          res.end(text);
        };
        if (path === '/health') {
          const s = source.status();
          json(loaded ? 200 : 503, { ok: loaded, routesLoaded: loaded, etcdConnected: s.connected, revision: s.revision ?? null });
        } else if (path === '/stats') json(200, stats());
        else json(404, { error: 'not found: try /health or /stats' });
      });
      adminPort = await listen(admin, options.admin.port, options.admin.host ?? '127.0.0.1');
    }
  } catch (err) {
    server.close();
    await tls?.close(0);
    if (tlsClient !== options.etcd) tlsClient?.close();
    throw err;
  }

  // Its own lease on the etcd client of the TLS side (the router's own, or the one it was given).
  if (options.report && tlsClient) reporter = new RouterReporter(tlsClient, options.report, state, log);
  const ready = source.start((routes) => {
    table.apply(routes);
    loaded = true;
    stateChanged();
  });
  ready.catch((err: unknown) => log(`routes: ${(err as Error).message}`));
  if (options.waitForRoutes ?? true) {
    try {
      await ready;
    } catch (err) {
      server.close();
      admin?.close();
      await reporter?.close();
      await tls?.close(0);
      if (tlsClient !== options.etcd) tlsClient?.close();
      throw err;
    }
  }

  let closing: Promise<void> | undefined;
  return {
    port,
    adminPort,
    httpsPort: tls?.port,
    ready,
    stats,
    domains: () => table.domains(),
    state,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        await source.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await Promise.all([closed, tls?.close(graceMs)]);
        clearTimeout(timer);
        // The record goes once the requests in flight are done (it lists what still drains).
        await reporter?.close();
        if (tlsClient !== options.etcd) tlsClient?.close();
        table.destroy();
        await accessLog?.close();
        if (admin) {
          const adminServer = admin;
          await new Promise<void>((resolve) => adminServer.close(() => resolve()));
        }
      })();
      return closing;
    },
  };
}
