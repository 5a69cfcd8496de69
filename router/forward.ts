import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { requestHeaders, responseHeadersOf } from './headers.js';
import { badGatewayPage, gatewayTimeoutPage, type Page } from './pages.js';
import type { Pool } from './pool.js';
import type { AccessLog } from './access-log.js';
import type { DomainCounters, RouterCounters } from './stats.js';
import type { TrustedProxies } from './trusted-proxies.js';
import type { Upstream } from './upstream.js';

export interface ForwardSettings {
  counters: RouterCounters;
  /** How long a connection to a backend may take before the next backend is tried. */
  connectTimeoutMs: number;
  /** How long a backend may stay silent mid-request before the client gets a 504. */
  upstreamTimeoutMs: number;
  /** Peers whose X-Forwarded-* are kept (appended to); everyone else's are replaced. */
  trustedProxies: TrustedProxies;
  /** How long a backend may take to answer an upgrade (its 101) before the client gets a 504. */
  upgradeTimeoutMs: number;
  /** Upgraded connections (open, or waiting for their 101) beyond which an upgrade gets a 503. */
  maxTunnels: number;
  /** Upgraded connections open or waiting for their 101, over every backend. */
  tunnels: number;
  accessLog: AccessLog | undefined;
  log: (line: string) => void;
}

/** Methods a client may repeat without changing the outcome (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors that mean the connection to the backend was never made: the backend is skipped a while. */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNECTTIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Errors before the request was written that are not the backend's fault: a connection that
 * died between connecting and being used, a pool closed under the request. Tried elsewhere.
 */
const NOT_SENT = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);

/** Errors of a connection that closed under a request before any answer. */
const CLOSED_UNDER = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * How often a request is tried again on the same backend after kept-alive connections closed
 * under it: each try uses up a stale connection (or makes a fresh one), so a few are enough.
 */
const STALE_RETRIES = 3;

/** Errors that mean the backend took the request and then said nothing for too long. */
const SILENCE = new Set(['UND_ERR_HEADERS_TIMEOUT', 'EUPSTREAMTIMEOUT']);

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

const kExchange = Symbol('quarry.exchange');
type Tagged = ServerResponse & { [kExchange]?: Exchange };

/** One listener shared by every response, rather than a closure made per request. */
function onResponseClose(this: Tagged): void {
  this[kExchange]!.finish();
}

function onResponseDrain(this: Tagged): void {
  this[kExchange]!.drained();
}

/**
 * One client request on its way through the router: it tries the pool's backends in turn
 * while trying again is safe, then relays the chosen backend's response. It is its own
 * undici dispatch handler, so a request costs one object: the request body (the client's
 * stream) and the response are streamed through, never gathered.
 *
 * Trying another backend is safe when nothing of the request reached the first one: its
 * connection was refused or never made (undici reads the body only once a connection
 * stands, and `onConnect` comes just before the request is written). It is also done, as
 * browsers and nginx do, when a kept-alive connection closes under an idempotent request
 * without a body before any answer; that one is tried on the same backend first (a few times:
 * other kept-alive connections may have closed too), then on the next.
 */
class Exchange implements Dispatcher.DispatchHandlers {
  private readonly started = performance.now();
  private readonly headers: string[];
  private readonly hasBody: boolean;
  private readonly options: Dispatcher.DispatchOptions;
  private tried: Set<Upstream> | undefined;
  private upstream: Upstream | undefined;
  /** Cancels the current attempt; set once its connection stands. */
  private abort: ((err?: Error) => void) | undefined;
  /** Undici's resume, once the client's socket pushed back. */
  private resume: (() => void) | undefined;
  /** The silence timer of a request with a body (see `onConnect`). */
  private timer: NodeJS.Timeout | undefined;
  /** The current attempt's connection is established: the request may have reached it. */
  private reached = false;
  private answered = false;
  private staleRetries = 0;
  /** Response body bytes relayed, for the access log. */
  private sent = 0;
  /** The backend of the last attempt (`host:port`), for the access log. */
  private upstreamAddress: string | undefined;
  /** The client's address, for the access log (the socket is detached by the time it is written). */
  private readonly client: string | undefined;
  private routerError = false;
  private done = false;

  constructor(
    private readonly settings: ForwardSettings,
    private readonly pool: Pool,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    targetHost: string | undefined,
  ) {
    const h = req.headers;
    // HTTP/2 marks a request without a body by ending its stream with the headers.
    const stream = (req as { stream?: { endAfterHeaders: boolean } }).stream;
    this.hasBody = stream ? !stream.endAfterHeaders
      : h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
    const client = req.socket.remoteAddress;
    if (settings.accessLog) this.client = client;
    const trusted = settings.trustedProxies.size > 0 && settings.trustedProxies.has(client);
    this.headers = requestHeaders(req, false, trusted, targetHost);
    this.options = {
      method: req.method as Dispatcher.HttpMethod,
      path: req.url!,
      headers: this.headers,
      // A request with a body has the router's own silence timer, refreshed as the body
      // goes up (undici's would only count from the last write that filled the socket).
      body: this.hasBody ? req : null,
      headersTimeout: this.hasBody ? 0 : undefined,
    };
    (res as Tagged)[kExchange] = this;
    res.on('close', onResponseClose);
  }

  attempt(): void {
    const upstream = this.pool.pick(this.tried);
    if (!upstream) {
      this.fail(badGatewayPage(this.pool.domain));
      return;
    }
    this.dispatchTo(upstream);
  }

  private dispatchTo(upstream: Upstream): void {
    this.upstream = upstream;
    this.upstreamAddress = upstream.address;
    this.reached = false;
    this.abort = undefined;
    upstream.begin();
    upstream.connections.dispatch(this.options, this);
  }

  // ---- undici's handler ----------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.done) {
      abort();
      return;
    }
    this.abort = abort;
    this.reached = true;
    if (this.hasBody) this.timer = setTimeout(onSilence, this.settings.upstreamTimeoutMs, this);
  }

  onBodySent(): void {
    this.timer?.refresh();
  }

  onRequestSent(): void {
    this.timer?.refresh();
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx informational answers (103 Early Hints) are not relayed; the final answer follows.
    if (statusCode < 200) return true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.answered = true;
    this.upstream!.markUp();
    this.res.sendDate = false; // the backend's Date passes through
    // HTTP/2 has no reason phrase (Node warns if given one).
    if (this.req.httpVersionMajor === 2) this.res.writeHead(statusCode, responseHeadersOf(raw));
    else this.res.writeHead(statusCode, statusText, responseHeadersOf(raw));
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.sent += chunk.length;
    // Head and body written in one tick leave in one write: Node corks the socket until the
    // next tick, so a small response is one syscall and one packet.
    if (this.res.write(chunk)) return true;
    if (this.res.listenerCount('drain') === 0) this.res.on('drain', onResponseDrain);
    return false;
  }

  onComplete(): void {
    this.res.end();
  }

  onError(err: Error): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.done) return;
    const upstream = this.upstream!;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!this.reached) {
      const refused = CONNECT_FAILURES.has(code);
      if (refused || NOT_SENT.has(code)) {
        if (refused) upstream.markDown();
        this.release();
        (this.tried ??= new Set()).add(upstream);
        this.attempt();
        return;
      }
    } else if (!this.answered && !this.hasBody && CLOSED_UNDER.has(code) && IDEMPOTENT.has(this.req.method!)) {
      // A kept-alive connection the backend closed just as the request went out.
      this.release();
      if (this.staleRetries < STALE_RETRIES && !upstream.retired) {
        this.staleRetries++;
        this.dispatchTo(upstream);
      } else {
        (this.tried ??= new Set()).add(upstream);
        this.attempt();
      }
      return;
    }
    if (this.answered || this.res.headersSent) {
      this.broken(code || err.message);
      return;
    }
    this.release();
    this.fail(SILENCE.has(code) ? gatewayTimeoutPage(this.pool.domain) : badGatewayPage(this.pool.domain));
  }

  // ---- the client's side -------------------------------------------------------------

  /** The client's socket took what was written: let the backend's answer flow again. */
  drained(): void {
    this.resume?.();
  }

  /** A request with a body went unanswered for upstreamTimeoutMs since it last moved. */
  silence(): void {
    this.timer = undefined;
    this.abort?.(new UpstreamTimeout('backend went silent'));
  }

  /**
   * The backend's answer broke off midway: the client's can only break off too. The client's
   * connection is closed with the answer unfinished (no final chunk, or fewer bytes than its
   * Content-Length), so the client sees it incomplete: never ended as if whole, and nothing
   * else written after it on that connection.
   */
  private broken(why: string): void {
    this.routerError = true;
    this.settings.log(`${this.pool.domain}: backend ${this.upstreamAddress ?? '?'} broke off its answer to ` +
      `${this.req.method} ${this.req.url} after ${this.sent} body bytes (${why}); the client's answer was cut off too`);
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
  finish(): void {
    if (this.done) return;
    this.done = true;
    const res = this.res;
    // The client went away mid-request: cancel it upstream (a request still waiting for its
    // connection is cancelled in onConnect).
    if (!res.writableFinished && this.upstream) this.abort?.();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.release();
    const status = res.writableFinished ? res.statusCode : 0;
    this.settings.accessLog?.request(this.client, this.req, res.headersSent ? res.statusCode : 0, this.sent, this.upstreamAddress,
      performance.now() - this.started);
    const counters: DomainCounters = this.pool.counters ??= this.settings.counters.of(this.pool.domain);
    counters.request(status, performance.now() - this.started, this.routerError);
  }
}

function onSilence(exchange: Exchange): void {
  exchange.silence();
}

/** Sends a request to one of the pool's backends and relays the answer. */
export function forward(
  settings: ForwardSettings, pool: Pool, req: IncomingMessage, res: ServerResponse, targetHost?: string,
): void {
  new Exchange(settings, pool, req, res, targetHost).attempt();
}

export { sendPage };
