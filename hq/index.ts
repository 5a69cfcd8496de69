export { startHq, type Hq, type HqOptions } from './hq.js';
export { quarryHome, HomeLayout } from './home.js';
export { atomicWrite } from './atomic-write.js';
export { type OnRelease, printPlan } from './release.js';
export { type Progress } from './progress.js';
export { addAuthorizedKey, fingerprint, readAuthorizedKeys, PublicKeyError, type AuthorizedKey } from './authorized-keys.js';
export { GIT_USER } from './ssh-server.js';
export { DEPLOY_BRANCHES, PushRefusedError, type RefUpdate } from './refs.js';
export { StackNameError, stackFromPath } from './stack-name.js';
export { HostKeyError } from './host-key.js';
export { HomeInUseError } from './hook-server.js';
export { CheckoutError } from './checkout.js';
export {
  BadRequestError, ReleaseNotFoundError, StackNotFoundError,
  type HqControl, type LogLine, type LogOptions, type PsRow, type ReleaseInfo, type ReleaseReason, type ServerRow, type GridView,
} from './control.js';
export { hqConfigOf, hqConfigSchema, loadHqConfig, type HqConfig } from './config.js';
export { loadOrCreateToken, tokenMatches, TokenFileError } from './token.js';
export { startOwnEtcd, EtcdStartError, type OwnEtcd, type OwnEtcdOptions } from './etcd-server.js';
export { ed25519Pair } from './key-pair.js';
export { gridAdvertise } from './grid/advertise.js';
export { startControl, type ControlContext, type ControlHandle } from './deploy/control.js';
export { type PushInfo } from './release.js';
export { startApi, type Api, type ApiOptions } from './api/server.js';
export {
  API_PREFIX, type ApiErrorBody, type EnvRequest, type HealthBody, type OperationLine, type RollbackRequest, type ScaleRequest,
} from './api/wire.js';
export { startDaemon, ListenError, type Daemon, type DaemonContext, type DaemonOptions, type HqInfo, type MakeControl } from './daemon.js';
