/** Domain → backend name → backend URL (`http://ip:port`): the whole routing state at once. */
export type RouteMap = ReadonlyMap<string, ReadonlyMap<string, string>>;

export interface RouteSourceStatus {
  /** The first full set of routes has arrived. */
  synced: boolean;
  /** Changes are arriving now (false while a watch is cut off and reconnecting). */
  connected: boolean;
  /** The store's revision the routes reflect, where the store has revisions. */
  revision: number | undefined;
}

/**
 * Where the router's routes come from: etcd in a cluster, anything else for an embedding
 * (HQ in small mode, tests). It hands over the full map on every change.
 */
export interface RouteSource {
  /** Starts delivering; resolves once the first full map has been delivered. */
  start(onRoutes: (routes: RouteMap) => void): Promise<void>;
  status(): RouteSourceStatus;
  close(): Promise<void>;
}

/** Routes held in memory and changed by calls: for embedding and for tests of the proxy. */
export class StaticRouteSource implements RouteSource {
  private readonly routes = new Map<string, Map<string, string>>();
  private listener: ((routes: RouteMap) => void) | undefined;
  private revision = 0;

  constructor(initial: Record<string, Record<string, string>> = {}) {
    for (const [domain, backends] of Object.entries(initial)) {
      this.routes.set(domain, new Map(Object.entries(backends)));
    }
  }

  async start(onRoutes: (routes: RouteMap) => void): Promise<void> {
    this.listener = onRoutes;
    onRoutes(this.routes);
  }

  set(domain: string, backend: string, url: string): void {
    let backends = this.routes.get(domain);
    if (!backends) this.routes.set(domain, (backends = new Map()));
    backends.set(backend, url);
    this.changed();
  }

  delete(domain: string, backend?: string): void {
    if (backend === undefined) this.routes.delete(domain);
    else {
      const backends = this.routes.get(domain);
      backends?.delete(backend);
      if (backends?.size === 0) this.routes.delete(domain);
    }
    this.changed();
  }

  status(): RouteSourceStatus {
    return { synced: this.listener !== undefined, connected: true, revision: this.revision };
  }

  async close(): Promise<void> {
    this.listener = undefined;
  }

  private changed(): void {
    this.revision++;
    this.listener?.(this.routes);
  }
}
