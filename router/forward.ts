import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { requestHeaders, responseHeaders } from './headers.js';
import { badGatewayPage, gatewayTimeoutPage, type Page } from './pages.js';
import type { Pool } from './pool.js';
import type { RouterCounters } from './stats.js';
import type { Upstream } from './upstream.js';

export interface ForwardSettings {
  counters: RouterCounters;
  /** How long a connection to a backend may take before the next backend is tried. */
  connectTimeoutMs: number;
  /** How long a backend may stay silent mid-request before the client gets a 504. */
  upstreamTimeoutMs: number;
}

/** Bodies up to this size (bytes, with a Content-Length) are relayed in one write. */
const SMALL_BODY = 16 * 1024;

/** Methods a client may repeat without changing the outcome (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors that mean the connection to the backend was never made. */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNECTTIMEOUT',
]);

class ConnectTimeout extends Error {
  readonly code = 'ECONNECTTIMEOUT';
}
class UpstreamTimeout extends Error {
  readonly code = 'EUPSTREAMTIMEOUT';
}

function sendPage(res: ServerResponse, page: Page): void {
  res.writeHead(page.status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(page.body),
    'Cache-Control': 'no-store',
  });
  res.end(page.body);
}

/**
 * One client request on its way through the router: it tries the pool's backends in turn
 * while trying again is safe, then relays the chosen backend's response.
 *
 * Trying another backend is safe when nothing of the request reached the first one: its
 * connection was refused or never made (the body is only read once a connection stands).
 * It is also done, as browsers and nginx do, when a kept-alive connection turns out closed
 * before any answer and the request is idempotent and has no body.
 */
class Exchange {
  private readonly started = performance.now();
  private readonly headers: string[];
  private readonly hasBody: boolean;
  private tried: Set<Upstream> | undefined;
  private upstream: Upstream | undefined;
  private proxyReq: ClientRequest | undefined;
  /** The current attempt's connection is established: the request may have reached it. */
  private reached = false;
  private answered = false;
  private routerError = false;
  private done = false;

  constructor(
    private readonly settings: ForwardSettings,
    private readonly pool: Pool,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    const h = req.headers;
    this.hasBody = h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
    this.headers = requestHeaders(req, false);
    res.on('close', () => this.finish());
  }

  attempt(): void {
    const upstream = this.pool.pick(this.tried);
    if (!upstream) {
      this.fail(badGatewayPage(this.pool.domain));
      return;
    }
    this.upstream = upstream;
    this.reached = false;
    upstream.begin();
    const proxyReq = request({
      host: upstream.hostname,
      port: upstream.port,
      method: this.req.method,
      path: this.req.url,
      headers: this.headers,
      agent: upstream.agent,
      timeout: this.settings.upstreamTimeoutMs,
    });
    this.proxyReq = proxyReq;
    proxyReq.on('socket', (socket) => this.onSocket(proxyReq, socket as Socket));
    proxyReq.on('response', (pres) => this.onResponse(proxyReq, pres));
    proxyReq.on('timeout', () => proxyReq.destroy(new UpstreamTimeout('backend went silent')));
    proxyReq.on('error', (err) => this.onError(proxyReq, err as NodeJS.ErrnoException));
    if (!this.hasBody) proxyReq.end();
  }

  private onSocket(proxyReq: ClientRequest, socket: Socket): void {
    if (!socket.connecting) {
      this.onConnected(proxyReq);
      return;
    }
    const timer = setTimeout(() => proxyReq.destroy(new ConnectTimeout('connect timed out')), this.settings.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      this.onConnected(proxyReq);
    });
    socket.once('close', () => clearTimeout(timer));
  }

  private onConnected(proxyReq: ClientRequest): void {
    if (proxyReq !== this.proxyReq) return;
    this.reached = true;
    if (this.hasBody) this.req.pipe(proxyReq);
  }

  private onResponse(proxyReq: ClientRequest, pres: IncomingMessage): void {
    if (proxyReq !== this.proxyReq || this.done) {
      pres.resume();
      return;
    }
    this.answered = true;
    this.upstream!.markUp();
    const res = this.res;
    res.sendDate = false;
    res.writeHead(pres.statusCode!, pres.statusMessage, responseHeaders(pres.rawHeaders));
    pres.on('error', () => this.broken());
    pres.on('aborted', () => this.broken());
    const length = Number(pres.headers['content-length']);
    if (length <= SMALL_BODY) this.relaySmall(pres, res);
    else pres.pipe(res);
  }

  /**
   * A small body of known length is gathered and sent with the head in one write: one
   * syscall and one packet per response instead of two or three.
   */
  private relaySmall(pres: IncomingMessage, res: ServerResponse): void {
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    pres.on('data', (chunk: Buffer) => {
      if (first === undefined) first = chunk;
      else (more ??= [first]).push(chunk);
    });
    pres.on('end', () => {
      res.end(more ? Buffer.concat(more) : first);
    });
  }

  private onError(proxyReq: ClientRequest, err: NodeJS.ErrnoException): void {
    if (proxyReq !== this.proxyReq || this.done) return;
    const upstream = this.upstream!;
    const neverReached = !this.reached && (err.code === undefined || CONNECT_FAILURES.has(err.code));
    const staleKeepAlive = this.reached && !this.answered && proxyReq.reusedSocket && !this.hasBody &&
      IDEMPOTENT.has(this.req.method ?? '') && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
    if (neverReached || staleKeepAlive) {
      if (neverReached && err.code !== undefined) upstream.markDown();
      this.release();
      (this.tried ??= new Set()).add(upstream);
      this.attempt();
      return;
    }
    if (this.answered || this.res.headersSent) {
      this.broken();
      return;
    }
    this.release();
    this.fail(err instanceof UpstreamTimeout ? gatewayTimeoutPage(this.pool.domain) : badGatewayPage(this.pool.domain));
  }

  /** The backend's answer broke off midway: the client's can only break off too. */
  private broken(): void {
    this.routerError = true;
    this.res.destroy();
  }

  private fail(page: Page): void {
    this.routerError = true;
    if (this.res.headersSent) this.res.destroy();
    else sendPage(this.res, page);
  }

  private release(): void {
    if (this.upstream) {
      this.upstream.end();
      this.upstream = undefined;
    }
  }

  /** The client's response closed: finished, or the client went away. */
  private finish(): void {
    if (this.done) return;
    this.done = true;
    const res = this.res;
    if (!res.writableFinished && this.proxyReq && !this.proxyReq.destroyed) this.proxyReq.destroy();
    this.release();
    const status = res.writableFinished ? res.statusCode : 0;
    this.settings.counters.request(this.pool.domain, status, performance.now() - this.started, this.routerError);
  }
}

/** Sends a request to one of the pool's backends and relays the answer. */
export function forward(settings: ForwardSettings, pool: Pool, req: IncomingMessage, res: ServerResponse): void {
  new Exchange(settings, pool, req, res).attempt();
}

export { sendPage };
