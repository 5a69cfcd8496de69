import type { StackSpec } from '../compiler/index.js';
import { memberWiring, type Peers } from './addressing.js';
import type { DesiredUnit } from './model.js';
import { isWired } from './wiring.js';

/** The env var a wired member reads its control secret from (the runtime's `CONTROL_KEY_ENV`). */
export const CONTROL_KEY_ENV = 'QUARRY_CONTROL_KEY';

export interface ContainerEnvOptions {
  /**
   * The port the member listens on, given to it as `PORT`, when it is not the unit's own port
   * in a container of its own: a process on loopback (a service run as a process gets one too).
   */
  port?: number;
}

/**
 * Everything a member's container (or process) boots with, wherever it runs: the unit's env
 * (the stack's `env`; none for services), the services' `<NAME>_HOST`/`<NAME>_PORT` as
 * `peers` has them, its identity (`QUARRY_STACK`, `QUARRY_NAME`, `QUARRY_MEMBER`), `PORT`
 * (a node's or element's port in its own container, or `options.port`), and for a unit in
 * the topology its wiring in `QUARRY_WIRING` and, for an element when `peers` has one, the
 * control secret in `QUARRY_CONTROL_KEY` (an env var only: never an argument nor a label).
 */
export function containerEnv(spec: StackSpec, unit: DesiredUnit, member: number, peers: Peers,
  options: ContainerEnvOptions = {}): Record<string, string> {
  const env: Record<string, string> = {
    ...unit.env,
    ...peers.services,
    QUARRY_STACK: spec.name,
    QUARRY_NAME: unit.name,
    QUARRY_MEMBER: String(member),
  };
  const port = options.port ?? (unit.kind !== 'service' ? unit.port : undefined);
  if (port !== undefined) env.PORT = String(port);
  if (isWired(spec, unit.name)) {
    env.QUARRY_WIRING = JSON.stringify(memberWiring(spec, unit.name, member, peers));
    // Elements and nodes with ports both run the runtime's control socket (a node through
    // `connect()`): HQ and the peer relay tell them where their consumers went.
    if (peers.controlKey !== undefined) env[CONTROL_KEY_ENV] = peers.controlKey;
  }
  return env;
}
