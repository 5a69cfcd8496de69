// HQ's public face: what the command line (cli/) and the benchmarks (bench/) use. Tests reach
// the parts they test directly.
export { startHq, type Hq, type HqOptions } from './daemon/index.js';
export { startDaemon, type Daemon, type DaemonContext, type DaemonOptions, type HqInfo, type MakeControl } from './daemon/index.js';
export { loadHqConfig, type HqConfig } from './config.js';
export { startControl, type ControlContext, type ControlHandle } from './deploy/index.js';
export { addAuthorizedKey } from './keys/index.js';
export type { CertificateInfo } from '../router/index.js';
export { startOwnEtcd, type OwnEtcd, type OwnEtcdOptions } from './etcd/index.js';
export type {
  HqControl, LogLine, LogOptions, PsRow, ReleaseInfo, ReleaseReason, ServerRow, GridView, TopView, TopElement, TopInstance, TopConnection,
} from './control.js';
export {
  API_PREFIX, TOP_EVENTS_EVERY_MS, type AddCertRequest, type AddKeyBody, type CertBody, type CertsBody, type ApiErrorBody, type EnvRequest, type GridBody, type HealthBody, type OperationLine, type RollbackRequest,
  type ScaleRequest, type ServersBody, type SessionBody, type TopBody,
} from './api/index.js';
