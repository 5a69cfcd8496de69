import type { StackSpec } from '../compiler/index.js';
import { serviceEnvNames } from '../compiler/index.js';
import { inPortNumbers, isWired, unitWiring, type DesiredUnit } from '../plan/index.js';
import type { Wiring } from '../runtime/index.js';
import type { Cluster, PlacedContainer } from './cluster.js';

/** The port every element's control socket binds inside its container (stats, peer changes). */
export const CONTROL_PORT = 7000;

/**
 * The name a member answers to on its stack's network: `<name>.<member>`. A new container
 * taking over a member (a deploy) gets the same name, so producers reconnect to it by name
 * and never need new peers; only a change in the number of members does.
 */
export function memberAlias(name: string, member: number): string {
  return `${name}.${member}`;
}

/**
 * Where the members of a stack are reached right now, as the containers that boot (their env)
 * and the producers that are told new peers see it.
 */
export interface Peers {
  /** How many members a unit has. */
  members(name: string): number;
  /** `tcp://HOST:PORT` of one member's in port, or undefined while it does not run. */
  endpoint(name: string, member: number, port: string): string | undefined;
  /** `<NAME>_HOST` and `<NAME>_PORT` of every service. */
  services: Record<string, string>;
}

/**
 * One engine: members by their stable names on the stack's network and fixed ports, services
 * by name. Nothing changes when a container is replaced.
 */
export function aliasPeers(spec: StackSpec, units: DesiredUnit[], members: (name: string) => number): Peers {
  return {
    members,
    endpoint: (name, m, port) => `tcp://${memberAlias(name, m)}:${portNumber(spec, name, port)}`,
    services: serviceAddresses(units),
  };
}

/**
 * A grid: members and services by their server's address and the host port their container
 * port is published on, as the containers `live` run now (minus those `leaving`). A member
 * that does not run has no endpoint: producers get it when it starts.
 */
export function publishedPeers(spec: StackSpec, units: DesiredUnit[], members: (name: string) => number,
  live: PlacedContainer[], cluster: Pick<Cluster, 'reach'>, leaving: ReadonlySet<string> = new Set()): Peers {
  const running = live.filter((c) => c.state === 'running' && !leaving.has(c.id));
  const newest = (name: string, member: number) => running
    .filter((c) => c.unit === name && (c.member ?? 0) === member)
    .sort((a, b) => b.n - a.n)[0];
  const services: Record<string, string> = {};
  for (const unit of units) {
    if (unit.kind !== 'service' || unit.port === undefined) continue;
    const c = newest(unit.name, 0);
    const at = c && cluster.reach(c, unit.port);
    if (!at) continue;
    const names = serviceEnvNames(unit.name);
    services[names.host] = at.host;
    services[names.port] = String(at.port);
  }
  return {
    members,
    endpoint: (name, m, port) => {
      const c = newest(name, m);
      const at = c && cluster.reach(c, portNumber(spec, name, port));
      return at ? `tcp://${at.host}:${at.port}` : undefined;
    },
    services,
  };
}

/** The wiring of one member: fixed container ports, peers where `peers` says, a control socket. */
export function memberWiring(spec: StackSpec, name: string, member: number, peers: Peers): Wiring {
  const wiring = unitWiring(spec, name, member, {
    members: (unit) => peers.members(unit),
    bind: (unit, _m, port) => `tcp://0.0.0.0:${portNumber(spec, unit, port)}`,
    endpoint: (unit, m, port) => peers.endpoint(unit, m, port) ?? '',
    control: () => `tcp://0.0.0.0:${CONTROL_PORT}`,
  });
  for (const port of Object.values(wiring.ports)) {
    if (port.dir === 'out') for (const target of port.targets) target.members = target.members.filter((m) => m.endpoint !== '');
  }
  return wiring;
}

/** The container ports of a wired unit that others reach: its in ports and its control socket. */
export function wiredPorts(spec: StackSpec, name: string): number[] {
  return isWired(spec, name) ? [CONTROL_PORT, ...Object.values(inPortNumbers(spec, name))] : [];
}

function portNumber(spec: StackSpec, name: string, port: string): number {
  const n = inPortNumbers(spec, name)[port];
  if (n === undefined) throw new Error(`${name} has no in port ${port}`);
  return n;
}

/** `<NAME>_HOST` and `<NAME>_PORT` of every service: its name on the stack's network, its port. */
export function serviceAddresses(units: DesiredUnit[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const unit of units) {
    if (unit.kind !== 'service') continue;
    const names = serviceEnvNames(unit.name);
    env[names.host] = unit.name;
    if (unit.port !== undefined) env[names.port] = String(unit.port);
  }
  return env;
}

/** Everything a member's container boots with: the stack's env, services' addresses, its identity, its wiring. */
export function containerEnv(spec: StackSpec, unit: DesiredUnit, member: number, peers: Peers): Record<string, string> {
  const env: Record<string, string> = {
    ...unit.env,
    ...peers.services,
    QUARRY_STACK: spec.name,
    QUARRY_NAME: unit.name,
    QUARRY_MEMBER: String(member),
  };
  if (unit.port !== undefined && unit.kind !== 'service') env.PORT = String(unit.port);
  if (isWired(spec, unit.name)) env.QUARRY_WIRING = JSON.stringify(memberWiring(spec, unit.name, member, peers));
  return env;
}
