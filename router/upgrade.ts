import { STATUS_CODES, request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { rawResponseHead, requestHeaders, responseHeaders } from './headers.js';
import { badGatewayPage, gatewayTimeoutPage, h2cRefusedPage, tooManyTunnelsPage, type Page } from './pages.js';
import type { Pool } from './pool.js';
import type { ForwardSettings } from './forward.js';
import type { Upstream } from './upstream.js';

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNECTTIMEOUT']);

/** Writes a whole HTTP response on a socket the HTTP server has handed over, and closes it. */
export function writePage(socket: Duplex, page: Page): void {
  if (socket.destroyed) return;
  const body = Buffer.from(page.body);
  socket.end(rawResponseHead(page.status, STATUS_CODES[page.status] ?? '', [
    'Content-Type', 'text/html; charset=utf-8',
    'Content-Length', String(body.length),
    'Connection', 'close',
  ]) + page.body);
}

/** `Upgrade: h2c` (among other protocols or alone): cleartext HTTP/2, which the router refuses. */
export function asksForH2c(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && upgrade.split(',').some((token) => token.trim().toLowerCase() === 'h2c');
}

/**
 * Passes an upgrade (a WebSocket, or any `Connection: upgrade`) through to a backend: the
 * request goes over a fresh connection, and once the backend answers 101 the two sockets are
 * joined byte for byte until either side closes. A backend that refuses the connection is
 * skipped for the next one, as for plain requests; one that declines the upgrade has its
 * answer relayed as it is; one that does not answer within `upgradeTimeoutMs` gets its
 * connection closed and the client a 504. Beyond `maxTunnels` upgraded connections (open or
 * waiting for their 101) an upgrade gets a 503, and `Upgrade: h2c` a 400: neither is passed on.
 */
export function forwardUpgrade(
  settings: ForwardSettings, pool: Pool, req: IncomingMessage, socket: Duplex, head: Buffer, targetHost?: string,
): void {
  const started = performance.now();
  let upstreamAddress: string | undefined;
  const logged = (status: number): void => {
    settings.accessLog?.request(req.socket.remoteAddress, req, status, undefined, upstreamAddress, performance.now() - started);
  };
  socket.on('error', () => socket.destroy());
  if (asksForH2c(req) || settings.tunnels >= settings.maxTunnels) {
    settings.counters.upgradeFailed(pool.domain);
    const page = asksForH2c(req) ? h2cRefusedPage() : tooManyTunnelsPage();
    logged(page.status);
    writePage(socket, page);
    return;
  }
  // A slot is held from now until the client's connection closes, whatever becomes of it.
  settings.tunnels++;
  const trusted = settings.trustedProxies.size > 0 && settings.trustedProxies.has(req.socket.remoteAddress);
  const headers = requestHeaders(req, true, trusted, targetHost);
  const tried = new Set<Upstream>();
  let settled = false;
  let current: ReturnType<typeof request> | undefined;
  socket.once('close', () => {
    settings.tunnels--;
    if (settled) return;
    settled = true;
    current?.destroy();
  });
  const failed = (page: Page): void => {
    settled = true;
    settings.counters.upgradeFailed(pool.domain);
    logged(page.status);
    writePage(socket, page);
  };

  const attempt = (): void => {
    const upstream = pool.pick(tried);
    if (!upstream) {
      failed(badGatewayPage(pool.domain));
      return;
    }
    tried.add(upstream);
    upstreamAddress = upstream.address;
    let reached = false;
    const proxyReq = request({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent: false,
    });
    current = proxyReq;
    let timer = setTimeout(() => proxyReq.destroy(Object.assign(new Error('connect timed out'), { code: 'ECONNECTTIMEOUT' })),
      settings.connectTimeoutMs);
    proxyReq.on('socket', (s) => {
      (s as Socket).once('connect', () => {
        reached = true;
        clearTimeout(timer);
        timer = setTimeout(() => {
          if (settled) return;
          failed(gatewayTimeoutPage(pool.domain));
          proxyReq.destroy();
        }, settings.upgradeTimeoutMs);
      });
    });
    proxyReq.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (settled) return;
      if (!reached && err.code !== undefined && CONNECT_FAILURES.has(err.code)) {
        upstream.markDown();
        attempt();
        return;
      }
      failed(badGatewayPage(pool.domain));
    });
    // The backend declined the upgrade: relay its answer, then close.
    proxyReq.on('response', (pres) => {
      clearTimeout(timer);
      if (settled) return void pres.resume();
      settled = true;
      logged(pres.statusCode!);
      socket.write(rawResponseHead(pres.statusCode!, pres.statusMessage ?? '',
        [...responseHeaders(pres.rawHeaders), 'Connection', 'close']));
      pres.pipe(socket);
    });
    proxyReq.on('upgrade', (pres, upstreamSocket, upstreamHead) => {
      clearTimeout(timer);
      if (settled) return void upstreamSocket.destroy();
      settled = true;
      upstream.markUp();
      settings.counters.upgrade(pool.domain);
      logged(pres.statusCode!);
      upstream.tunnels++;
      upstreamSocket.setNoDelay(true);
      upstreamSocket.setTimeout(0);
      (socket as Socket).setNoDelay?.(true);
      (socket as Socket).setTimeout?.(0);
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        upstream.tunnels--;
        socket.destroy();
        upstreamSocket.destroy();
      };
      upstreamSocket.on('error', close);
      upstreamSocket.on('close', close);
      socket.on('close', close);
      socket.write(rawResponseHead(pres.statusCode!, pres.statusMessage ?? '', pres.rawHeaders));
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });
    proxyReq.end();
  };
  attempt();
}
