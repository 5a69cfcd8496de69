// `quarry hq`: the daemon that starts and stops HQ's parts in order, and the push endpoint it serves.
export { startHq, type Hq, type HqOptions } from './hq.js';
export { startDaemon, type Daemon, type DaemonContext, type DaemonOptions, type HqInfo, type MakeControl } from './daemon.js';
