/**
 * quarry's element runtime: what element code imports (`quarry/runtime`), and what runners use
 * to start elements and read their counters. See docs/runtime.md.
 */
export { element, type AskOptions, type Context, type ElementDefinition, type Merge } from './definition.js';
export type { Json, Log } from './log.js';
export { ElementRuntime, startElement, type StartOptions } from './runtime.js';
export { connect, type Connection } from './connect.js';
export { loadElement, codeFileOf, CODE_FILES } from './load.js';
export { DEFAULT_TUNING, parseWiring, readWiring } from './wiring.js';
/** The format of `QUARRY_WIRING`, types only (the plan, which makes wirings, imports just these). */
export type {
  InPortWiring, Member, OutPortWiring, PortKind, PortTuning, PortWiring, Target, Wiring,
} from './wiring-format.js';
export { ManualPeerSource, type PeerChange, type PeerSource } from './peers.js';
export {
  askControl, readStats, sendPeers, newControlKey, ControlGate, CONTROL_KEY_ENV, CONTROL_REFUSED, type ControlOptions, type ControlRequest,
} from './control.js';
export type { ElementStats, LatencyStats, PortStats } from './counters.js';
export { mergeAnswers } from './merge.js';
export {
  ControlRefusedError,
  ElementCodeError,
  ElementStoppedError,
  NoPeersError,
  PortError,
  QueryFailedError,
  QueryTimeoutError,
  WiringError,
} from './errors.js';
export {
  endpointTargets, endpointMemberId, sameTargets, EndpointPeerSource,
  type EndpointFeed, type EndpointRecordLike, type MemberRecords,
} from './endpoint-peers.js';
export {
  holdPeers, releasePeers, shedQueue, waitDrained, isUnknownControlRequest,
  DEFAULT_HOLD_MS, DEFAULT_DRAINED_WAIT_MS, MAX_HOLD_MS, UNKNOWN_CONTROL_REQUEST, type InFlight, type Shed,
} from './control.js';
export {
  reshard, type ReshardConsumer, type ReshardOptions, type ReshardProducer, type ReshardResult,
} from './reshard.js';
