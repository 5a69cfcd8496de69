import { LatencyHistogram, type LatencySummary } from './latency.js';

/** What the router counts for one route (a domain as routed, `*.` wildcards as one). */
export interface DomainStats {
  requests: number;
  /** Requests the router itself failed: 502 (no backend answered), 504, a broken stream. */
  errors: number;
  /** Responses by status class, the backends' and the router's. */
  responses: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  /** WebSocket and other upgrades passed through. */
  upgrades: number;
  latency: LatencySummary;
}

export class DomainCounters {
  requests = 0;
  errors = 0;
  upgrades = 0;
  readonly classes = [0, 0, 0, 0, 0];
  readonly latency = new LatencyHistogram();

  /** One request done: its status as the client saw it (0 if it got none) and its time. */
  request(status: number, ms: number, routerError: boolean): void {
    this.requests++;
    if (routerError) this.errors++;
    const cls = ((status / 100) | 0) - 1;
    if (cls >= 0 && cls < 5) this.classes[cls]!++;
    this.latency.record(ms);
  }

  snapshot(): DomainStats {
    const [c1, c2, c3, c4, c5] = this.classes as [number, number, number, number, number];
    return {
      requests: this.requests,
      errors: this.errors,
      responses: { '1xx': c1, '2xx': c2, '3xx': c3, '4xx': c4, '5xx': c5 },
      upgrades: this.upgrades,
      latency: this.latency.summary(),
    };
  }
}

/** Counters per domain, kept for the router's life (routes that go keep their counts). */
export class RouterCounters {
  private readonly domains = new Map<string, DomainCounters>();
  /** Requests for a host no route answers. */
  unknown = 0;

  /** The counters of one domain, made on first use; a caller may keep it. */
  of(domain: string): DomainCounters {
    let counters = this.domains.get(domain);
    if (!counters) this.domains.set(domain, (counters = new DomainCounters()));
    return counters;
  }

  /** One request done: its status as the client saw it (0 if it got none) and its time. */
  request(domain: string, status: number, ms: number, routerError: boolean): void {
    this.of(domain).request(status, ms, routerError);
  }

  upgrade(domain: string): void {
    this.of(domain).upgrades++;
  }

  upgradeFailed(domain: string): void {
    this.of(domain).errors++;
  }

  snapshot(): { totals: { requests: number; errors: number; unknown: number }; domains: Record<string, DomainStats> } {
    const domains: Record<string, DomainStats> = {};
    let requests = this.unknown;
    let errors = 0;
    for (const name of [...this.domains.keys()].sort()) {
      const stats = this.domains.get(name)!.snapshot();
      domains[name] = stats;
      requests += stats.requests;
      errors += stats.errors;
    }
    return { totals: { requests, errors, unknown: this.unknown }, domains };
  }
}
