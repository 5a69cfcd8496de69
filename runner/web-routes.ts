import { startRouter, StaticRouteSource, type Router } from '../router/index.js';
import { CannotRunError } from './errors.js';

/**
 * The one local port through which a stack's web nodes are reached, routing by Host header
 * as the real router does. Backends are added as each web member becomes healthy.
 */
export class LocalRoutes {
  private constructor(private readonly router: Router, private readonly source: StaticRouteSource) {}

  static async start(port: number): Promise<LocalRoutes> {
    const source = new StaticRouteSource();
    try {
      return new LocalRoutes(await startRouter({ port, host: '127.0.0.1', routeSource: source }), source);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      throw new CannotRunError(`port ${port} on 127.0.0.1 is in use; give another with --port N (--port 0 picks a free one)`);
    }
  }

  get port(): number {
    return this.router.port;
  }

  add(domains: string[], backend: string, url: string): void {
    for (const domain of domains) this.source.set(domain, backend, url);
  }

  close(): Promise<void> {
    return this.router.close(1000);
  }
}

/** How to reach each domain through the local port: a URL (`*.localhost` is loopback) and a curl. */
export function urlsOf(domains: string[], port: number): { urls: string[]; curls: string[] } {
  return {
    urls: domains.map((d) => `http://${d}:${port}/`),
    curls: domains.map((d) => `curl -H 'Host: ${d}' http://127.0.0.1:${port}/`),
  };
}
