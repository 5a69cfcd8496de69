/**
 * The per-server agent (the caretaker): its record and load in etcd under a lease, config
 * files kept in sync, and its installation on a server's engine. This file is the folder's
 * public surface; bundle.ts (build-time) and main.ts (the image's entry) are not part of it.
 */
export { startAgent, type Agent, type AgentOptions } from './agent.js';
export { runAgentDaemon, type AgentDaemonOptions } from './daemon.js';
export { agentSettingsSchema, loadAgentSettings, type AgentSettings } from './settings.js';
export {
  SERVERS_PREFIX, serverKey, loadKey, serverRecord, loadRecord, type ServerRecord, type LoadRecord,
} from './records.js';
export { parseLoadavg, parseMeminfo, readHostStats, ProcParseError, type HostStats } from './proc.js';
export { FILES_PREFIX, filePathOf, startFileSync, type FileSync, type FileSyncOptions } from './files.js';
export {
  installAgent, AgentInstallError, AGENT_IMAGE, AGENT_CONTAINER, AGENT_SETTINGS_PATH, AGENT_LABEL,
  installRouter, removeRouter, ROUTER_CONTAINER, ROUTER_SETTINGS_PATH, ROUTER_LABEL, ROUTER_ADMIN_PORT,
  type InstallAgentOptions, type InstallRouterOptions,
} from './install.js';
export { pickAddress, machineAddress } from './address.js';
export { agentVersion } from './version.js';
