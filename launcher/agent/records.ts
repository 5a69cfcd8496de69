import type { HostStats } from './proc.js';

/** Where servers' records live in etcd (DESIGN.md, etcd keys). */
export const SERVERS_PREFIX = '/quarry/servers/';

/** `/quarry/servers/<id>`: the server's record, under its agent's lease. */
export function serverKey(id: string): string {
  return `${SERVERS_PREFIX}${id}`;
}

/** `/quarry/servers/<id>/load`: its load, refreshed by the agent, under the same lease. */
export function loadKey(id: string): string {
  return `${SERVERS_PREFIX}${id}/load`;
}

/** The value of `/quarry/servers/<id>`. */
export interface ServerRecord {
  id: string;
  address: string;
  agent: { version: string; pid: number; startedAt: string };
  /** The engine's version; null while the engine does not answer. */
  docker: { version: string | null };
}

/** The value of `/quarry/servers/<id>/load`. */
export interface LoadRecord {
  /** When it was measured (ISO 8601). */
  at: string;
  cpus: number;
  load1: number;
  memory: { totalMb: number; availableMb: number };
  /** Running containers labelled `quarry.stack`; null while the engine does not answer. */
  containers: number | null;
}

export function serverRecord(input: {
  id: string;
  address: string;
  version: string;
  pid: number;
  startedAt: Date;
  dockerVersion: string | null;
}): ServerRecord {
  return {
    id: input.id,
    address: input.address,
    agent: { version: input.version, pid: input.pid, startedAt: input.startedAt.toISOString() },
    docker: { version: input.dockerVersion },
  };
}

export function loadRecord(at: Date, host: HostStats, containers: number | null): LoadRecord {
  return {
    at: at.toISOString(),
    cpus: host.cpus,
    load1: host.load1,
    memory: { totalMb: host.memory.totalMb, availableMb: host.memory.availableMb },
    containers,
  };
}

/** The text put in etcd: one line of JSON. */
export function recordText(record: ServerRecord | LoadRecord | object): string {
  return JSON.stringify(record);
}
