import type { DomainCounters } from './stats.js';
import type { Upstream } from './upstream.js';

/**
 * The backends of one route (a domain), balanced round-robin. A backend that refused a
 * connection a moment ago is skipped while others are up; when every one is down they are
 * tried anyway, since a refusal costs little and the backend may be back.
 */
export class Pool {
  readonly domain: string;
  readonly upstreams: readonly Upstream[];
  private cursor = 0;
  /** This route's counters, kept here once looked up so a request need not look them up. */
  counters: DomainCounters | undefined;

  constructor(domain: string, upstreams: readonly Upstream[]) {
    this.domain = domain;
    this.upstreams = upstreams;
  }

  /** The next backend to try, leaving out those already tried for this request. */
  pick(tried?: ReadonlySet<Upstream>): Upstream | undefined {
    const all = this.upstreams;
    const count = all.length;
    if (count === 0) return undefined;
    const now = Date.now();
    let fallback: Upstream | undefined;
    for (let i = 0; i < count; i++) {
      const index = (this.cursor + i) % count;
      const upstream = all[index]!;
      if (upstream.retired || tried?.has(upstream)) continue;
      if (upstream.isDown(now)) {
        fallback ??= upstream;
        continue;
      }
      this.cursor = index + 1;
      return upstream;
    }
    return fallback;
  }
}
