import type { Etcd3 } from 'etcd3';
import { ROUTERS_PREFIX, parseBackendUrl } from '../router/index.js';

/** A router's record as DEPLOY reads it (`/quarry/routers/<id>`, router/report.ts). */
export interface RouterSyncRecord {
  id: string;
  /** The etcd revision of the routes it applied; null before any (or a record that cannot be read). */
  revision: number | null;
  /** Retired backends it still has requests in flight on. */
  draining: readonly string[];
}

/** Where the routers are against a route change at revision `revision` that retired `oldUrls`. */
export interface RouterSyncState {
  /** Records found: 0 means no router reports (DEPLOY then waits its fixed delay). */
  routers: number;
  /** Routers (ids, sorted) that have not applied the change yet. */
  lagging: string[];
  /** Routers (by id, sorted) that still have requests in flight on one of the old backends. */
  draining: Array<{ id: string; urls: string[] }>;
  /** Every router applied the change and none still drains an old backend. */
  done: boolean;
}

/**
 * The decision, pure: which routers lag behind revision `revision` (null: the change wrote
 * nothing, so none can lag) and which still drain one of `oldUrls`.
 */
export function routerSyncState(records: readonly RouterSyncRecord[], revision: number | null, oldUrls: readonly string[]): RouterSyncState {
  // As the router writes them: `http://1.2.3.4:80` is `http://1.2.3.4` there.
  const old = new Set(oldUrls.map((url) => parseBackendUrl(url) ?? url));
  const byId = [...records].sort((a, b) => a.id.localeCompare(b.id));
  const lagging = revision === null ? [] : byId.filter((r) => r.revision === null || r.revision < revision).map((r) => r.id);
  const draining = byId
    .map((r) => ({ id: r.id, urls: [...new Set(r.draining.filter((url) => old.has(url)))].sort() }))
    .filter((r) => r.urls.length > 0);
  return { routers: records.length, lagging, draining, done: records.length > 0 && lagging.length === 0 && draining.length === 0 };
}

/** A record's value as DEPLOY trusts it: one that cannot be read counts as a router that applied nothing. */
export function parseRouterRecord(key: string, value: string): RouterSyncRecord {
  const id = key.startsWith(ROUTERS_PREFIX) ? key.slice(ROUTERS_PREFIX.length) : key;
  try {
    const parsed = JSON.parse(value) as { revision?: unknown; draining?: unknown };
    const revision = typeof parsed.revision === 'number' && Number.isFinite(parsed.revision) ? parsed.revision : null;
    const draining = Array.isArray(parsed.draining) ? parsed.draining.filter((u): u is string => typeof u === 'string') : [];
    return { id, revision, draining };
  } catch {
    return { id, revision: null, draining: [] };
  }
}

export async function readRouterRecords(etcd: Etcd3): Promise<RouterSyncRecord[]> {
  const found = await etcd.getAll().prefix(ROUTERS_PREFIX).strings();
  return Object.entries(found).map(([key, value]) => parseRouterRecord(key, value));
}

export interface RouterSyncOptions {
  etcd: Etcd3;
  /** The etcd revision of the route change's last write; null when it wrote nothing. */
  revision: number | null;
  /** The backend URLs (`http://host:port`) of the containers about to stop. */
  oldUrls: readonly string[];
  /** How long every router gets to apply the change; then the deploy goes on, naming those that lagged. */
  syncMs: number;
  /** How long, after that, the old backends get to finish their requests in flight; also the fixed wait when no router reports. */
  drainMs: number;
  /** Where the lines about routers that lagged or still drained go. */
  info?: (line: string) => void;
  /** How often the records are read again; default 25 ms. */
  pollMs?: number;
}

export interface RouterSyncOutcome {
  /** `routers`: waited on the records; `fixed`: no router reports, so the fixed `drainMs` delay. */
  how: 'routers' | 'fixed';
  /** Routers that had not applied the change when `syncMs` ran out (empty when all did). */
  lagged: string[];
  /** Routers that still drained an old backend when `drainMs` ran out. */
  drained: Array<{ id: string; urls: string[] }>;
  waitedMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * DEPLOY's wait between taking old web containers out of the routes and stopping them: until
 * every router's record (`/quarry/routers/`) has applied `revision` (at most `syncMs`), then
 * until none lists an old backend as draining (at most `drainMs` from then). With no record at
 * all (no router reports), the fixed `drainMs` delay instead.
 */
export async function waitForRouters(options: RouterSyncOptions): Promise<RouterSyncOutcome> {
  const started = performance.now();
  const pollMs = options.pollMs ?? 25;
  const info = options.info ?? (() => undefined);
  const read = () => readRouterRecords(options.etcd);
  let state = routerSyncState(await read(), options.revision, options.oldUrls);
  if (state.routers === 0) {
    await sleep(options.drainMs);
    return { how: 'fixed', lagged: [], drained: [], waitedMs: performance.now() - started };
  }
  // (a) every router applied the change.
  const syncBy = started + options.syncMs;
  while (state.lagging.length > 0 && performance.now() < syncBy) {
    await sleep(Math.min(pollMs, Math.max(0, syncBy - performance.now())));
    state = routerSyncState(await read(), options.revision, options.oldUrls);
  }
  const lagged = state.lagging;
  if (lagged.length > 0) {
    info(`router${lagged.length === 1 ? '' : 's'} ${lagged.join(', ')} had not applied the route change (etcd revision ${options.revision}) ` +
      `after ${Math.round(options.syncMs / 1000 * 10) / 10} s; going on`);
  }
  // (b) none still has requests in flight on an old backend.
  const drainBy = performance.now() + options.drainMs;
  while (state.draining.length > 0 && performance.now() < drainBy) {
    await sleep(Math.min(pollMs, Math.max(0, drainBy - performance.now())));
    state = routerSyncState(await read(), options.revision, options.oldUrls);
  }
  const drained = state.draining;
  if (drained.length > 0) {
    info(`still in flight after ${options.drainMs} ms: ${drained.map((d) => `${d.id} on ${d.urls.join(', ')}`).join('; ')}; stopping anyway`);
  }
  return { how: 'routers', lagged, drained, waitedMs: performance.now() - started };
}
