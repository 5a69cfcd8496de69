/**
 * The router: HTTP by Host header to the healthy backends of a domain, from etcd, live.
 * This file is the folder's whole public surface.
 */
export { startRouter, type Router, type RouterOptions, type RouterStats } from './router.js';
export { EtcdRouteSource, ROUTES_PREFIX, etcdClient, parseBackendUrl, parseRouteKey, type EtcdRouteSourceOptions, type EtcdTls } from './etcd-route-source.js';
export { StaticRouteSource, type RouteMap, type RouteSource, type RouteSourceStatus } from './route-source.js';
export { startRouterWorkers, mergeStats, WorkerStartError, type RouterWorkers, type RouterWorkersOptions, type WorkerState } from './workers.js';
export { runRouterWorker, WORKER_ENV } from './worker.js';
export {
  ROUTERS_PREFIX, RouterReporter, RouterReportError, routerRecordKey,
  type RouterRecord, type RouterReportOptions, type RouterReportState,
} from './report.js';
export { routerConfigSchema, type RouterConfig } from './config.js';
export { runRouterCommand, type RouterCommandIO } from './command.js';
export { domainOfHost } from './host.js';
export { TrustedProxies, TrustedProxyError } from './trusted-proxies.js';
export { absoluteTarget } from './target.js';
export {
  CERTS_PREFIX, CHALLENGES_PREFIX, CertificateError, describeCertificate, type CertificateInfo, type StoredCertificate,
} from './certificates.js';
export type { DomainStats } from './stats.js';
export type { LatencySummary } from './latency.js';
export type { UpstreamStats } from './upstream.js';
