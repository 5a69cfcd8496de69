import type { StackSpec } from '../../compiler/index.js';
import { serviceEnvNames } from '../../compiler/index.js';
import { inPortNumbers, isWired, unitWiring, type DesiredUnit } from '../../plan/index.js';
import type { Wiring } from '../../runtime/index.js';

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

/** The wiring of one member on a docker network: fixed ports, member names, a control socket. */
export function dockerWiring(spec: StackSpec, name: string, member: number, members: (name: string) => number): Wiring {
  return unitWiring(spec, name, member, {
    members,
    bind: (unit, _m, port) => `tcp://0.0.0.0:${portNumber(spec, unit, port)}`,
    endpoint: (unit, m, port) => `tcp://${memberAlias(unit, m)}:${portNumber(spec, unit, port)}`,
    control: () => `tcp://0.0.0.0:${CONTROL_PORT}`,
  });
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
export function containerEnv(spec: StackSpec, units: DesiredUnit[], unit: DesiredUnit, member: number, members: (name: string) => number): Record<string, string> {
  const env: Record<string, string> = {
    ...unit.env,
    ...serviceAddresses(units),
    QUARRY_STACK: spec.name,
    QUARRY_NAME: unit.name,
    QUARRY_MEMBER: String(member),
  };
  if (unit.port !== undefined && unit.kind !== 'service') env.PORT = String(unit.port);
  if (isWired(spec, unit.name)) env.QUARRY_WIRING = JSON.stringify(dockerWiring(spec, unit.name, member, members));
  return env;
}
