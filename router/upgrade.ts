import { STATUS_CODES, request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { rawResponseHead, requestHeaders, responseHeaders } from './headers.js';
import { badGatewayPage, type Page } from './pages.js';
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

/**
 * Passes an upgrade (a WebSocket, or any `Connection: upgrade`) through to a backend: the
 * request goes over a fresh connection, and once the backend answers 101 the two sockets are
 * joined byte for byte until either side closes. A backend that refuses the connection is
 * skipped for the next one, as for plain requests; one that declines the upgrade has its
 * answer relayed as it is.
 */
export function forwardUpgrade(
  settings: ForwardSettings, pool: Pool, req: IncomingMessage, socket: Duplex, head: Buffer,
): void {
  const headers = requestHeaders(req, true);
  const tried = new Set<Upstream>();
  let settled = false;
  let current: ReturnType<typeof request> | undefined;
  socket.on('error', () => socket.destroy());
  socket.once('close', () => {
    if (settled) return;
    settled = true;
    current?.destroy();
  });

  const attempt = (): void => {
    const upstream = pool.pick(tried);
    if (!upstream) {
      settings.counters.upgradeFailed(pool.domain);
      writePage(socket, badGatewayPage(pool.domain));
      return;
    }
    tried.add(upstream);
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
    const timer = setTimeout(() => proxyReq.destroy(Object.assign(new Error('connect timed out'), { code: 'ECONNECTTIMEOUT' })),
      settings.connectTimeoutMs);
    proxyReq.on('socket', (s) => {
      (s as Socket).once('connect', () => {
        reached = true;
        clearTimeout(timer);
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
      settled = true;
      settings.counters.upgradeFailed(pool.domain);
      writePage(socket, badGatewayPage(pool.domain));
    });
    // The backend declined the upgrade: relay its answer, then close.
    proxyReq.on('response', (pres) => {
      if (settled) return void pres.resume();
      settled = true;
      socket.write(rawResponseHead(pres.statusCode!, pres.statusMessage ?? '',
        [...responseHeaders(pres.rawHeaders), 'Connection', 'close']));
      pres.pipe(socket);
    });
    proxyReq.on('upgrade', (pres, upstreamSocket, upstreamHead) => {
      if (settled) return void upstreamSocket.destroy();
      settled = true;
      upstream.markUp();
      settings.counters.upgrade(pool.domain);
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
