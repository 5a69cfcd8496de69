export { diffPlan } from './diff.js';
export { applyPlan } from './apply.js';
export { desiredUnits, unitDefinitions, buildTag, PREVIEW_DIGEST_KEY } from './desired.js';
export { parseCurrentState, CurrentStateError } from './current-file.js';
export { formatPlan, describeInstruction } from './format.js';
export type * from './model.js';
export { unitWiring, inPortNumbers, isWired, FIRST_IN_PORT, type WiringAddressing } from './wiring.js';
export { scaleFaults, scaleInstructions, scalesOf, withScales } from './scale.js';
export { envFaults, changeEnv, withEnv } from './env.js';
export { domainClaimFaults } from './domain-claims.js';
export {
  CONTROL_PORT, memberAlias, serviceEnv, serviceAddresses, aliasPeers, publishedPeers, runContainerPeers, loopbackPeers,
  loopbackKey, memberWiring, wiredPorts, type Peers, type LiveContainer, type Reach,
} from './addressing.js';
export { containerEnv, type ContainerEnvOptions } from './container-env.js';
export { containerRequests, type ContainerRequest, type PlacementOptions } from './placement.js';
export { imageBuilds, type ImageNeed, type ImageBuilds } from './images.js';
export { networkHosts, hostsBlock, membershipChanges, HQ_HOST_ID, type NetworkHost, type GridHosts } from './network.js';
export { CONTROL_KEY_ENV } from './container-env.js';
export { pickHostPorts, HOST_PORT_RANGE } from './host-ports.js';
export {
  restartDecision, restartLabel, parseRestartLabel, DEFAULT_RESTART, type RestartPolicy, type RestartDecision,
} from './restart.js';
export { healPlan, stackOf, type ServerSight, type HealAction, type HealOptions } from './heal.js';
export { routerHostsPlan, type RouterHostSight, type RouterHostsPlan } from './router-hosts.js';
export {
  imageGc, releaseImages, formatImageGc, type ImageGcInput, type ImageGcDecision, type ImageGcSummary, type ImageKeepReason, type ReleaseImages,
} from './image-gc.js';
export {
  autoscaleDecisions, shrinkLullMs, DEFAULT_AUTOSCALE, AutoscaleError, type AutoscalePolicy, type MetricSample,
  type AutoscaleElement, type AutoscaleInput, type AutoscaleOptions, type AutoscaleDecision,
} from './autoscale.js';
export {
  autoscaleSamples, autoscaleRound, lastSizeChanges, autoscaledElements, flowEdges, stackAutoscaleInput, SampleHistory, MIN_OPEN_SHARE, type StackAutoscaleState,
  STALE_FIGURES_MS, type FlowEdge, type InstanceFigures, type PortFigures,
} from './autoscale-figures.js';
