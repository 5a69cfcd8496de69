import { FieldProblem, integer, list, object, optional, port, string, url, type ConfigOf, type Field } from '../config/index.js';
import { availableParallelism } from 'node:os';
import { TrustedProxies, TrustedProxyError } from './trusted-proxies.js';

/** An IP address or CIDR block, checked as the router will read it. */
function addressOrBlock(): Field<string> {
  return {
    expects: 'an IP address or CIDR block',
    parse(value) {
      if (typeof value !== 'string') throw new FieldProblem(`must be an IP address or CIDR block, got ${JSON.stringify(value)}`);
      try {
        new TrustedProxies([value]);
      } catch (err) {
        if (err instanceof TrustedProxyError) throw new FieldProblem(`must be an IP address or CIDR block (like 10.0.0.0/8), got ${JSON.stringify(value)}`);
        throw err;
      }
      return value;
    },
  };
}

/**
 * `quarry router --config URL`: the JSON document's settings. Every key has a default that
 * runs on one machine: web traffic on port 80 of every address, stats on 127.0.0.1:9080,
 * routes from the etcd on 127.0.0.1:2379.
 */
export const routerConfigSchema = {
  port: port({ default: 80 }),
  /** HTTPS (HTTP/2 and HTTP/1.1, certificates from etcd by SNI), e.g. 443; off when absent. */
  httpsPort: optional(port()),
  /** Processes sharing the listening socket, each following etcd: one per core by default; 1 runs no supervisor. */
  workers: integer({ default: availableParallelism(), min: 1 }),
  host: string({ default: '0.0.0.0', nonEmpty: true }),
  etcd: list(url({ protocols: ['http:', 'https:'] }), { default: ['http://127.0.0.1:2379'], nonEmpty: true }),
  /**
   * TLS to etcd (PEM text): the CA that signed etcd's certificate, and this router's client
   * certificate and key. A router host on a grid has its server's own (docs/hq.md, "Router hosts").
   */
  etcdTls: optional(object({
    ca: string({ nonEmpty: true }),
    cert: string({ nonEmpty: true }),
    key: string({ nonEmpty: true }),
  })),
  admin: object({
    port: port({ default: 9080 }),
    host: string({ default: '127.0.0.1', nonEmpty: true }),
  }),
  backendDownMs: integer({ default: 5000, min: 0 }),
  connectTimeoutMs: integer({ default: 5000, min: 1 }),
  upstreamTimeoutMs: integer({ default: 60_000, min: 1 }),
  keepAliveTimeoutMs: integer({ default: 30_000, min: 1 }),
  /** Proxies in front of the router whose X-Forwarded-* are kept; everyone else's are replaced. */
  trustedProxies: list(addressOrBlock(), { default: [] }),
  upgradeTimeoutMs: integer({ default: 30_000, min: 1 }),
  maxTunnels: integer({ default: 10_000, min: 0 }),
  /**
   * Keep `/quarry/routers/<id>` in etcd (what this router applied, what still drains) for DEPLOY
   * to wait on before it stops old web containers; a router host's is its server's id. Off when absent.
   */
  report: optional(object({
    id: string({ nonEmpty: true }),
  })),
  /** `stderr` or a file path: one line per request. Off when absent. */
  accessLog: optional(string({ nonEmpty: true })),
};

export type RouterConfig = ConfigOf<typeof routerConfigSchema>;
