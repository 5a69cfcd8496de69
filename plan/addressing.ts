import { serviceEnvNames, type StackSpec } from '../compiler/index.js';
import type { Wiring } from '../runtime/index.js';
import type { DesiredUnit } from './model.js';
import { inPortNumbers, isWired, unitWiring } from './wiring.js';

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
 * Where the members of a stack are reached right now, as the containers (or processes) that
 * boot (their env) and the producers that are told new peers see it. The one thing that
 * differs between a grid (server addresses), one engine (stable names on the stack's
 * network) and a local run (container names, or loopback ports for processes).
 */
export interface Peers {
  /** How many members a unit has. */
  members(name: string): number;
  /** `tcp://HOST:PORT` of one member's in port, or undefined while it does not run. */
  endpoint(name: string, member: number, port: string): string | undefined;
  /** Where a member binds its in port: `tcp://0.0.0.0:7001` in a container, a loopback port for a process. */
  bind(name: string, member: number, port: string): string;
  /** Where a member binds its control socket; absent (or undefined): it has none. */
  control?(name: string, member: number): string | undefined;
  /**
   * The secret every element member's control socket answers to, given to it as
   * `QUARRY_CONTROL_KEY` (HQ's per-stack key, or a local run's own); absent: none is given,
   * and such a member refuses every control request.
   */
  controlKey?: string;
  /** `<NAME>_HOST` and `<NAME>_PORT` of every service. */
  services: Record<string, string>;
}

/** What the plan needs of a container that runs now: which member of which unit, how new, whether up. */
export interface LiveContainer {
  id: string;
  /** Its unit's name. */
  unit: string;
  /** The member it plays; absent counts as 0. */
  member?: number;
  /** Its number among every container the unit has had: the `<n>` of `<stack>.<name>.<n>`. */
  n: number;
  /** docker's state: `running`, `exited`, `restarting`, … */
  state: string;
}

/** Where a container's port is reached from elsewhere (HQ, the router, other servers); undefined when it is not. */
export type Reach<C extends LiveContainer = LiveContainer> = (container: C, port: number) => { host: string; port: number } | undefined;

/** `<NAME>_HOST` and `<NAME>_PORT` of one service reached at `host`:`port`. */
export function serviceEnv(name: string, host: string, port: number | undefined): Record<string, string> {
  const names = serviceEnvNames(name);
  return { [names.host]: host, ...(port !== undefined && { [names.port]: String(port) }) };
}

/** `<NAME>_HOST` and `<NAME>_PORT` of every service: its name on the stack's network, its port. */
export function serviceAddresses(units: DesiredUnit[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const unit of units) {
    if (unit.kind === 'service') Object.assign(env, serviceEnv(unit.name, unit.name, unit.port));
  }
  return env;
}

/** In a container: every in port on its fixed container port, on every interface. */
function containerBind(spec: StackSpec): Peers['bind'] {
  return (name, _m, port) => `tcp://0.0.0.0:${portNumber(spec, name, port)}`;
}

const controlSocket = () => `tcp://0.0.0.0:${CONTROL_PORT}`;

/**
 * One engine: members by their stable names on the stack's network and fixed ports, services
 * by name. Nothing changes when a container is replaced.
 */
export function aliasPeers(spec: StackSpec, units: DesiredUnit[], members: (name: string) => number): Peers {
  return {
    members,
    endpoint: (name, m, port) => `tcp://${memberAlias(name, m)}:${portNumber(spec, name, port)}`,
    bind: containerBind(spec),
    control: controlSocket,
    services: serviceAddresses(units),
  };
}

/**
 * A grid: members and services by their server's address and the host port their container
 * port is published on, as the containers `live` run now (minus those `leaving`). A member
 * that does not run has no endpoint: producers get it when it starts.
 */
export function publishedPeers<C extends LiveContainer>(spec: StackSpec, units: DesiredUnit[], members: (name: string) => number,
  live: readonly C[], reach: Reach<C>, leaving: ReadonlySet<string> = new Set()): Peers {
  const running = live.filter((c) => c.state === 'running' && !leaving.has(c.id));
  const newest = (name: string, member: number) => running
    .filter((c) => c.unit === name && (c.member ?? 0) === member)
    .sort((a, b) => b.n - a.n)[0];
  const services: Record<string, string> = {};
  for (const unit of units) {
    if (unit.kind !== 'service' || unit.port === undefined) continue;
    const c = newest(unit.name, 0);
    const at = c && reach(c, unit.port);
    if (at) Object.assign(services, serviceEnv(unit.name, at.host, at.port));
  }
  return {
    members,
    endpoint: (name, m, port) => {
      const c = newest(name, m);
      const at = c && reach(c, portNumber(spec, name, port));
      return at ? `tcp://${at.host}:${at.port}` : undefined;
    },
    bind: containerBind(spec),
    control: controlSocket,
    services,
  };
}

/**
 * A local run's containers (`quarry run`): one per member, named `<stack>.<name>.<member>` on
 * the stack's network and reached by that name on fixed ports; services by name. No control
 * socket (nothing tells a local run's producers new peers).
 */
export function runContainerPeers(spec: StackSpec, units: DesiredUnit[]): Peers {
  const scale = new Map(units.map((u) => [u.name, u.scale]));
  return {
    members: (name) => scale.get(name) ?? 1,
    endpoint: (name, m, port) => `tcp://${spec.name}.${name}.${m}:${portNumber(spec, name, port)}`,
    bind: containerBind(spec),
    services: serviceAddresses(units),
  };
}

/**
 * A local run's processes: every in port of every member binds and is reached at the loopback
 * port `ports` gives it (chosen up front, `<name>/<member>/<port>` → port). `services` are the
 * addresses of the services started so far.
 */
export function loopbackPeers(units: DesiredUnit[], ports: ReadonlyMap<string, number>, services: Record<string, string>): Peers {
  const scale = new Map(units.map((u) => [u.name, u.scale]));
  const at = (name: string, m: number, port: string) => {
    const p = ports.get(loopbackKey(name, m, port));
    if (p === undefined) throw new Error(`no port chosen for ${name}.${m} ${port}`);
    return `tcp://127.0.0.1:${p}`;
  };
  return { members: (name) => scale.get(name) ?? 1, bind: at, endpoint: at, services };
}

/** The key of one member's in port in `loopbackPeers`' ports. */
export function loopbackKey(name: string, member: number, port: string): string {
  return `${name}/${member}/${port}`;
}

/**
 * The wiring of one member: in ports bound and peers reached where `peers` says, its control
 * socket if `peers` gives one. A member without an endpoint (not running) is left out.
 */
export function memberWiring(spec: StackSpec, name: string, member: number, peers: Peers): Wiring {
  const wiring = unitWiring(spec, name, member, {
    members: (unit) => peers.members(unit),
    bind: (unit, m, port) => peers.bind(unit, m, port),
    endpoint: (unit, m, port) => peers.endpoint(unit, m, port) ?? '',
    control: (unit, m) => peers.control?.(unit, m),
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
