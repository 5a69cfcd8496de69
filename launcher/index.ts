export { LABELS, containerName, networkName } from './labels.js';
export { ImageBuildError, UnhealthyError, EngineError } from './errors.js';
export { buildImage, hasImage, type BuildOptions } from './images.js';
export {
  ensureNetwork, startContainer, publishedPorts, listContainers, removeContainer, CONTAINER_PIDS_LIMIT, CONTAINER_LOG_CONFIG,
  type ContainerSpec, type RunningContainer, type ContainerKind,
} from './containers.js';
export { waitHealthy, lastOutput, probe, type HealthCheck } from './health.js';
export {
  ensureRuntimeImage, buildElementImage, quarryRoot, NODE_BASE_IMAGE, RUNTIME_IMAGE, RUNTIME_MAIN, type ElementImageOptions,
} from './element-image.js';
export {
  connectEngine, RemoteEngineError, REMOTE_DOCKER_SOCKET, type RemoteEngine, type EngineOptions, type RemoteEngineFailure,
} from './remote-engine.js';
export { ensureImage, ImageTransferError, type EnsureImageOptions } from './image-transfer.js';
export {
  startAgent, runAgentDaemon, installAgent, loadAgentSettings, agentSettingsSchema, AgentInstallError,
  AGENT_IMAGE, AGENT_CONTAINER, AGENT_SETTINGS_PATH, AGENT_LABEL, SERVERS_PREFIX, serverKey, loadKey, FILES_PREFIX,
  installRouter, removeRouter, ROUTER_CONTAINER, ROUTER_ADMIN_PORT,
  type Agent, type AgentOptions, type AgentSettings, type InstallAgentOptions, type InstallRouterOptions, type ServerRecord, type LoadRecord,
} from './agent/index.js';
export { SmallModeError } from './errors.js';
export { type Progress, SILENT_PROGRESS, progressTo } from './progress.js';
export { terminalSafe } from './terminal-text.js';
export { type Cluster, type PlacedContainer, type ServerRow, type GridView, type GridHealing } from './cluster.js';
export { LocalCluster, LOCAL_SERVER } from './local-cluster.js';
export { StackExecutor, type ExecutorContext } from './executor.js';
export {
  waitForRouters, routerSyncState, parseRouterRecord, readRouterRecords,
  type RouterSyncRecord, type RouterSyncState, type RouterSyncOptions, type RouterSyncOutcome,
} from './router-sync.js';
export { keys, type EndpointRecord, type CareRecord, type ElementMetrics, type PortMetrics } from './etcd-keys.js';
export { buildUnitImages, type UnitImagesReport, type ImageBuild, type PresentImage } from './unit-images.js';
export { startLocknetSync, memberOf, type LocknetState, type LocknetSync, type LocknetSyncOptions } from './locknet-sync.js';
export { locknetApplier } from './locknet-apply.js';
export { startPeerRelay, type PeerRelay, type PeerRelayOptions } from './peer-relay.js';
export { startCaretaker, type Caretaker, type CaretakerOptions } from './caretaker.js';
export { restartedByDocker } from './containers.js';
export { within } from './within.js';
export {
  registryShipper, wholeImageShipper, splitName,
  type ImageRegistry, type ImageShipper, type RegistryCredentials, type ShipOptions, type ShipResult,
} from './registry-image.js';
export {
  collectImages, imagesInUse, DEFAULT_IMAGE_MIN_AGE_MS, type CollectImagesOptions, type ImageCollection,
} from './image-gc.js';
export { findElementContainers, type ElementContainer, type FindElementContainersOptions } from './peer-relay.js';
export {
  startMetricsRelay, elementMetrics, figuresOf, type MetricsRelay, type MetricsRelayOptions, type MetricsIdentity, type StatsSnapshot,
} from './metrics-relay.js';
