import { integer, list, object, port, string, url, type ConfigOf } from '../config/index.js';

/**
 * `quarry router --config URL`: the JSON document's settings. Every key has a default that
 * runs on one machine: web traffic on port 80 of every address, stats on 127.0.0.1:9080,
 * routes from the etcd on 127.0.0.1:2379.
 */
export const routerConfigSchema = {
  port: port({ default: 80 }),
  host: string({ default: '0.0.0.0', nonEmpty: true }),
  etcd: list(url({ protocols: ['http:', 'https:'] }), { default: ['http://127.0.0.1:2379'], nonEmpty: true }),
  admin: object({
    port: port({ default: 9080 }),
    host: string({ default: '127.0.0.1', nonEmpty: true }),
  }),
  backendDownMs: integer({ default: 5000, min: 0 }),
  connectTimeoutMs: integer({ default: 5000, min: 1 }),
  upstreamTimeoutMs: integer({ default: 60_000, min: 1 }),
  keepAliveTimeoutMs: integer({ default: 30_000, min: 1 }),
};

export type RouterConfig = ConfigOf<typeof routerConfigSchema>;
