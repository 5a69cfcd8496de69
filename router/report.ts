import type { Etcd3, Lease } from 'etcd3';

/** Where each reporting router keeps its record: `/quarry/routers/<id>`, under its own lease. */
export const ROUTERS_PREFIX = '/quarry/routers/';

/**
 * A router's record (`/quarry/routers/<id>`): what DEPLOY waits on before it stops old web
 * containers (launcher/router-sync.ts). No secret ever goes in it.
 */
export interface RouterRecord {
  id: string;
  /** The etcd revision of the routes the router applied (for workers: the lowest over the workers with routes); null before any. */
  revision: number | null;
  /** URLs of retired backends that still have requests in flight, sorted. */
  draining: string[];
  /** When the record was put (ISO 8601). */
  at: string;
}

/** What a router says of itself when asked; the reporter stamps it with its id and the time. */
export interface RouterReportState {
  revision: number | null;
  draining: string[];
}

/** A router's report setting: its record is `/quarry/routers/<id>`. */
export interface RouterReportOptions {
  id: string;
  /** The lease's TTL in seconds; default 10. */
  ttlSeconds?: number;
}

/** A report id that cannot be a key segment. */
export class RouterReportError extends Error {}

/** `/quarry/routers/<id>`; a RouterReportError for an id that is empty or has a `/`. */
export function routerRecordKey(id: string): string {
  if (id === '' || id.includes('/')) throw new RouterReportError(`router report id must be non-empty and have no "/", got ${JSON.stringify(id)}`);
  return ROUTERS_PREFIX + id;
}

const COALESCE_MS = 50;
const CLOSE_TIMEOUT_MS = 3000;

const settle = (promise: Promise<unknown>, ms: number): Promise<void> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => undefined, () => undefined),
    new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); }),
  ]).finally(() => clearTimeout(timer));
};

/**
 * Keeps `/quarry/routers/<id>` in etcd under a lease of its own (kept alive by etcd3): put at
 * start, put again when the state's revision or draining list changes (bursts coalesced, at
 * most one put every 50 ms), put again under a new lease when the lease is lost (etcd away too
 * long), retried while etcd does not answer, and revoked (so deleted) on close.
 */
export class RouterReporter {
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private putting: Promise<void> | undefined;
  /** The revision and draining list last put, as text; undefined when the record must be put again. */
  private last: string | undefined;
  private backoff = 250;
  private failing: string | undefined;
  private closed = false;
  private readonly key: string;
  private readonly ttl: number;

  constructor(
    private readonly client: Etcd3,
    private readonly options: RouterReportOptions,
    private readonly state: () => RouterReportState,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.key = routerRecordKey(options.id);
    this.ttl = options.ttlSeconds ?? 10;
    this.schedule(0);
  }

  /** The state may have changed: put the record again soon if it did. */
  changed(): void {
    this.schedule(COALESCE_MS);
  }

  private schedule(ms: number): void {
    if (this.closed || this.timer || this.putting) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.putting = this.flush().finally(() => {
        this.putting = undefined;
        // Changes while the put was under way: put again if they differ from what was put.
        if (this.last !== undefined && this.last !== this.signature(this.state())) this.schedule(COALESCE_MS);
      });
    }, ms);
    this.timer.unref();
  }

  private signature(state: RouterReportState): string {
    return JSON.stringify([state.revision, state.draining]);
  }

  private currentLease(): Lease {
    if (this.lease && !this.lease.revoked()) return this.lease;
    const lease = this.client.lease(this.ttl);
    lease.on('lost', (err: Error) => {
      if (this.lease !== lease || this.closed) return;
      this.log(`report: lease for ${this.key} lost (${err.message}); putting it again`);
      this.lease = undefined;
      this.last = undefined;
      this.schedule(this.backoff);
    });
    this.lease = lease;
    return lease;
  }

  private async flush(): Promise<void> {
    if (this.closed) return;
    const state = this.state();
    const signature = this.signature(state);
    if (signature === this.last) return;
    const record: RouterRecord = { id: this.options.id, revision: state.revision, draining: [...state.draining], at: new Date().toISOString() };
    try {
      await this.currentLease().put(this.key).value(JSON.stringify(record));
      this.last = signature;
      this.backoff = 250;
      if (this.failing !== undefined) this.log(`report: ${this.key} written again`);
      this.failing = undefined;
    } catch (err) {
      if (this.closed) return;
      const message = (err as Error).message;
      if (message !== this.failing) this.log(`report: cannot write ${this.key} (${message}); trying again`);
      this.failing = message;
      this.last = undefined;
      const wait = this.backoff;
      this.backoff = Math.min(this.backoff * 2, 5000);
      // After the finally of this put has run.
      setTimeout(() => this.schedule(0), wait).unref();
    }
  }

  /** Stops reporting and deletes the record (revokes its lease; it expires by itself if etcd does not answer). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.putting) await settle(this.putting, CLOSE_TIMEOUT_MS);
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    await settle(lease.revoke(), CLOSE_TIMEOUT_MS);
    lease.release();
  }
}
