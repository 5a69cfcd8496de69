import { Pool as ConnectionPool } from 'undici';

export interface UpstreamOptions {
  /** How long a backend that refused a connection is skipped, in milliseconds. */
  downMs: number;
  /** How long an idle kept-alive connection to a backend is kept, in milliseconds. */
  idleSocketMs: number;
  /** How long a connection to a backend may take, in milliseconds (default 5000). */
  connectTimeoutMs?: number;
  /** How long a backend may stay silent mid-request, in milliseconds (default 60000). */
  upstreamTimeoutMs?: number;
  /** Called when a retired backend's last request in flight ends (it is drained). */
  onDrained?: () => void;
}

const noop = (): void => undefined;

/**
 * One backend (`http://ip:port`) with its own pool of kept-alive connections. Shared by every
 * domain that routes to the same address. Once no route names it any more it is retired:
 * it gets no new requests, and its pool is closed when the last request in flight is done.
 */
export class Upstream {
  readonly url: string;
  readonly hostname: string;
  readonly port: number;
  /** `host:port`, as the access log shows it. */
  readonly address: string;
  /** undici's pool of kept-alive connections to this backend (plain requests; upgrades open their own). */
  readonly connections: ConnectionPool;
  /** HTTP requests under way on this backend (upgraded connections are not counted). */
  inFlight = 0;
  /** Upgraded connections (WebSockets) open to this backend. */
  tunnels = 0;
  /** Until when (epoch ms) the backend is skipped because it refused a connection. */
  downUntil = 0;
  retired = false;
  private readonly downMs: number;
  private readonly onDrained: (() => void) | undefined;

  constructor(url: string, options: UpstreamOptions) {
    const parsed = new URL(url);
    this.url = url;
    this.hostname = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(parsed.port || 80);
    this.address = `${parsed.hostname}:${this.port}`;
    this.downMs = options.downMs;
    this.onDrained = options.onDrained;
    const silence = options.upstreamTimeoutMs ?? 60_000;
    // One request per connection at a time (no pipelining), as many connections as needed;
    // an idle one is closed after idleSocketMs, or sooner if the backend's Keep-Alive says so.
    this.connections = new ConnectionPool(parsed.origin, {
      pipelining: 1,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      keepAliveTimeout: options.idleSocketMs,
      keepAliveTimeoutThreshold: 1000,
      headersTimeout: silence,
      bodyTimeout: silence,
      strictContentLength: true,
    });
  }

  isDown(now: number): boolean {
    return this.downUntil > now;
  }

  markDown(now: number = Date.now()): void {
    this.downUntil = now + this.downMs;
  }

  markUp(): void {
    if (this.downUntil !== 0) this.downUntil = 0;
  }

  begin(): void {
    this.inFlight++;
  }

  end(): void {
    this.inFlight--;
    if (this.retired && this.inFlight === 0) {
      this.close();
      this.onDrained?.();
    }
  }

  /** No route names this backend any more: finish what is in flight, then close the pool. */
  retire(): void {
    this.retired = true;
    if (this.inFlight === 0) this.close();
  }

  private close(): void {
    if (!this.connections.destroyed) this.connections.destroy().catch(noop);
  }

  snapshot(): UpstreamStats {
    return {
      url: this.url,
      inFlight: this.inFlight,
      tunnels: this.tunnels,
      down: this.isDown(Date.now()),
      retired: this.retired,
    };
  }
}

export interface UpstreamStats {
  url: string;
  inFlight: number;
  tunnels: number;
  /** Skipped for now: it refused a connection a moment ago. */
  down: boolean;
  /** No longer routed to; still finishing requests in flight. */
  retired: boolean;
}
