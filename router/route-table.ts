import { domainOfHost, wildcardOf } from './host.js';
import { Pool } from './pool.js';
import type { RouteMap } from './route-source.js';
import { Upstream, type UpstreamOptions, type UpstreamStats } from './upstream.js';

/**
 * The live routing table: which pool of backends answers a Host. Rebuilt from the full route
 * map on every change, keeping the backends (and their open connections) that stay; the
 * ones that go are retired at once, so no new request reaches them.
 */
export class RouteTable {
  private pools = new Map<string, Pool>();
  private upstreams = new Map<string, Upstream>();
  /** Retired backends still finishing requests, shown in stats until they are done. */
  private draining = new Set<Upstream>();
  private readonly options: UpstreamOptions;

  constructor(options: UpstreamOptions) {
    this.options = options;
  }

  apply(routes: RouteMap): void {
    const pools = new Map<string, Pool>();
    const upstreams = new Map<string, Upstream>();
    for (const [domain, backends] of routes) {
      const members: Upstream[] = [];
      for (const url of new Set(backends.values())) {
        let upstream = upstreams.get(url) ?? this.upstreams.get(url);
        if (!upstream) upstream = new Upstream(url, this.options);
        upstreams.set(url, upstream);
        members.push(upstream);
      }
      if (members.length === 0) continue;
      // Keep the pool (and its round-robin place) when its backends did not change.
      const previous = this.pools.get(domain);
      const same = previous !== undefined && previous.upstreams.length === members.length &&
        previous.upstreams.every((u, i) => u === members[i]);
      pools.set(domain, same ? previous : new Pool(domain, members));
    }
    for (const [url, upstream] of this.upstreams) {
      if (upstreams.has(url)) continue;
      upstream.retire();
      if (upstream.inFlight > 0) this.draining.add(upstream);
    }
    for (const upstream of this.draining) if (upstream.inFlight === 0) this.draining.delete(upstream);
    this.pools = pools;
    this.upstreams = upstreams;
  }

  /** The pool for a Host header: the exact domain first, then a `*.` route one label up. */
  lookup(host: string | undefined): Pool | undefined {
    const domain = domainOfHost(host);
    if (domain === undefined) return undefined;
    const exact = this.pools.get(domain);
    if (exact) return exact;
    const wildcard = wildcardOf(domain);
    return wildcard === undefined ? undefined : this.pools.get(wildcard);
  }

  /** URLs of retired backends that still have requests in flight, sorted. */
  drainingUrls(): string[] {
    const urls = new Set<string>();
    for (const upstream of this.draining) {
      if (upstream.inFlight === 0) this.draining.delete(upstream);
      else urls.add(upstream.url);
    }
    return [...urls].sort();
  }

  domains(): string[] {
    return [...this.pools.keys()].sort();
  }

  upstreamStats(): UpstreamStats[] {
    for (const upstream of this.draining) if (upstream.inFlight === 0) this.draining.delete(upstream);
    return [...this.upstreams.values(), ...this.draining].map((u) => u.snapshot());
  }

  /** Closes every pool of connections; for shutting the router down. */
  destroy(): void {
    for (const upstream of [...this.upstreams.values(), ...this.draining]) upstream.retire();
    this.pools = new Map();
    this.upstreams = new Map();
    this.draining.clear();
  }
}
