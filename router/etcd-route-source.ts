import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import type { RouteMap, RouteSource, RouteSourceStatus } from './route-source.js';

export const ROUTES_PREFIX = '/quarry/routes/';

/** etcd over TLS: the CA that signed etcd's certificate, and a client certificate and key (PEM). */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

/** An etcd client for `hosts`, over TLS with a client certificate when `tls` is given (a router host's on a grid). */
export function etcdClient(hosts: string[], tls?: EtcdTls): Etcd3 {
  return new Etcd3({
    hosts,
    ...(tls && {
      credentials: { rootCertificate: Buffer.from(tls.ca), certChain: Buffer.from(tls.cert), privateKey: Buffer.from(tls.key) },
    }),
  });
}

export interface EtcdRouteSourceOptions {
  /** A client to use (not closed by the source), or the endpoints to make one for. */
  client?: Etcd3;
  hosts?: string[];
  /** TLS for the client made for `hosts`. */
  tls?: EtcdTls;
  prefix?: string;
  /** Where to say what went wrong with the watch or with a key; default: nowhere. */
  log?: (line: string) => void;
}

interface Change {
  type: 'put' | 'delete';
  key: string;
  value: string;
  revision: number;
}

/** A domain and backend from a key `<prefix><domain>/<backend>`; undefined for other keys. */
export function parseRouteKey(key: string, prefix: string = ROUTES_PREFIX): { domain: string; backend: string } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  return { domain: rest.slice(0, slash).toLowerCase(), backend: rest.slice(slash + 1) };
}

/** A backend URL as the router uses it (`http://host:port`), or undefined if it is not one. */
export function parseBackendUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' || url.hostname === '') return undefined;
  return `http://${url.host}`;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * Routes from etcd, kept live with a watch on the prefix. The routes are read whole at a
 * revision R and the watch starts at R+1, so no change falls between. After the watch
 * reconnects, or after etcd cancels it (its revision compacted away), the prefix is read
 * whole again and the table rebuilt: a resync, so nothing missed while cut off lingers.
 */
export class EtcdRouteSource implements RouteSource {
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly log: (line: string) => void;
  /** Key → backend URL as last known, and the revision that state reflects. */
  private kvs = new Map<string, string>();
  private revision = 0;
  private watcher: Watcher | undefined;
  private onRoutes: ((routes: RouteMap) => void) | undefined;
  private synced = false;
  private connected = false;
  private closed = false;
  /** Changes that arrive while a resync reads the prefix; applied after it, if newer. */
  private pending: Change[] | undefined;
  private resyncing: Promise<void> | undefined;
  /** Serialises watch re-creations. */
  private rewatching: Promise<void> | undefined;

  constructor(options: EtcdRouteSourceOptions) {
    if (!options.client && !options.hosts?.length) throw new Error('EtcdRouteSource needs a client or hosts');
    this.client = options.client ?? etcdClient(options.hosts!, options.tls);
    this.ownsClient = !options.client;
    this.prefix = options.prefix ?? ROUTES_PREFIX;
    this.log = options.log ?? (() => undefined);
  }

  async start(onRoutes: (routes: RouteMap) => void): Promise<void> {
    this.onRoutes = onRoutes;
    await this.watchWithRetry();
  }

  status(): RouteSourceStatus {
    return { synced: this.synced, connected: this.connected, revision: this.synced ? this.revision : undefined };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onRoutes = undefined;
    const watcher = this.watcher;
    this.watcher = undefined;
    // etcd3 keeps re-establishing the watch stream (on a timer that holds the process open)
    // while any watcher is attached, even after the client is closed: so a watch being made
    // is let finish (it cancels itself, seeing `closed`), and a cancel is given time to land
    // before the client goes, even while it waits for a reconnection.
    if (this.rewatching) await Promise.race([this.rewatching.catch(() => undefined), delay(10_000)]);
    if (watcher) {
      watcher.removeAllListeners();
      watcher.on('error', () => undefined);
      await Promise.race([watcher.cancel().catch(() => undefined), delay(10_000)]);
    }
    if (this.ownsClient) this.client.close();
  }

  /** Reads the prefix and creates a watch from just after it, retrying until it works. */
  private async watchWithRetry(): Promise<void> {
    let backoff = 250;
    while (!this.closed) {
      try {
        await this.resync();
        await this.createWatcher();
        return;
      } catch (err) {
        if (this.closed) return;
        this.log(`routes: etcd unavailable (${(err as Error).message}); retrying in ${backoff} ms`);
        await delay(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  private async createWatcher(): Promise<void> {
    const watcher = await this.client.watch()
      .prefix(this.prefix)
      .startRevision(String(this.revision + 1))
      .create();
    if (this.closed) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.watcher = watcher;
    this.connected = true;
    watcher.on('put', (kv: IKeyValue) => this.change({
      type: 'put', key: kv.key.toString(), value: kv.value.toString(), revision: Number(kv.mod_revision),
    }));
    watcher.on('delete', (kv: IKeyValue) => this.change({
      type: 'delete', key: kv.key.toString(), value: '', revision: Number(kv.mod_revision),
    }));
    watcher.on('disconnected', (err: Error) => {
      this.connected = false;
      this.log(`routes: etcd watch disconnected (${err.message}); reconnecting`);
    });
    watcher.on('connected', () => {
      this.connected = true;
      this.log('routes: etcd watch reconnected; resyncing');
      void this.resyncQuietly();
    });
    // etcd cancelled the watch (e.g. its start revision was compacted): make a new one.
    watcher.on('error', (err: Error) => {
      this.connected = false;
      this.log(`routes: etcd watch cancelled (${err.message}); watching anew`);
      if (this.watcher === watcher) this.watcher = undefined;
      this.rewatching ??= this.watchWithRetry().finally(() => { this.rewatching = undefined; });
    });
  }

  private async resyncQuietly(): Promise<void> {
    try {
      await this.resync();
    } catch (err) {
      // The watch reconnected but a read failed: the watch replays from its revision, and
      // the next reconnection resyncs again.
      this.log(`routes: resync failed (${(err as Error).message})`);
    }
  }

  /** Reads the whole prefix and rebuilds from it, then applies changes newer than the read. */
  private resync(): Promise<void> {
    this.resyncing ??= (async () => {
      this.pending = [];
      try {
        const response = await this.client.getAll().prefix(this.prefix).exec();
        const kvs = new Map<string, string>();
        for (const kv of response.kvs) kvs.set(kv.key.toString(), kv.value.toString());
        this.kvs = kvs;
        this.revision = Number(response.header.revision);
        const pending = this.pending;
        this.pending = undefined;
        for (const change of pending) this.applyChange(change);
        this.synced = true;
        this.publish();
      } finally {
        this.pending = undefined;
        this.resyncing = undefined;
      }
    })();
    return this.resyncing;
  }

  private change(change: Change): void {
    if (this.pending) {
      this.pending.push(change);
      return;
    }
    if (this.applyChange(change)) this.publish();
  }

  /** Applies one watched change unless the state already reflects it; true if applied. */
  private applyChange(change: Change): boolean {
    if (change.revision <= this.revision) return false;
    this.revision = change.revision;
    if (change.type === 'put') this.kvs.set(change.key, change.value);
    else this.kvs.delete(change.key);
    return true;
  }

  private publish(): void {
    if (!this.onRoutes) return;
    const routes = new Map<string, Map<string, string>>();
    for (const [key, value] of this.kvs) {
      const route = parseRouteKey(key, this.prefix);
      if (!route) continue;
      const url = parseBackendUrl(value);
      if (!url) {
        this.log(`routes: ignoring ${key}: ${JSON.stringify(value)} is not an http://ip:port URL`);
        continue;
      }
      let backends = routes.get(route.domain);
      if (!backends) routes.set(route.domain, (backends = new Map()));
      backends.set(route.backend, url);
    }
    this.onRoutes(routes);
  }
}
