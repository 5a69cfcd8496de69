import type { StackSpec } from '../compiler/index.js';
import { memberAlias, wiredPorts, type Peers } from './addressing.js';
import { containerEnv } from './container-env.js';
import type { DesiredUnit, UnitKind } from './model.js';
import type { RestartPolicy } from './restart.js';

/** One container to start for a member of a unit: what the launcher places and starts. */
export interface ContainerRequest {
  stack: string;
  /** The unit's name. */
  name: string;
  kind: UnitKind;
  /** Its number among every container the unit has had: the `<n>` of `<stack>.<name>.<n>`. */
  n: number;
  image: string;
  env: Record<string, string>;
  command?: string[];
  /** The port the container listens on; published (on a free host port) when set. */
  port?: number;
  /** More container ports to publish (each on a free host port): a grid's element ports, reached from other servers. */
  publish?: number[];
  /** Its memory limit, MB: its slice's size on a grid. */
  memoryMb: number;
  /** The release it belongs to (`v3`, or `run` for a local run). */
  release?: string;
  /** The unit's definition (`quarry.digest`): a container of another digest is replaced. */
  digest?: string;
  /** The member it plays (0-based): labelled, so that a new container can take over its part. */
  member?: number;
  /** More names it answers to on the stack's network (besides `<name>` and `<stack>.<name>.<n>`). */
  aliases?: string[];
  /** How its caretaker restarts it when it dies (labelled `quarry.restart`); default DEFAULT_RESTART. */
  restart?: RestartPolicy;
}

export interface PlacementOptions {
  /** The release the containers are labelled with. */
  release: string;
  /** On a grid: a wired unit's in ports and control socket are published, for other servers. */
  publishWired: boolean;
}

/**
 * The containers that start `members` of a unit: numbered after every container the unit has
 * had (`existing`, whatever its state), each with its member's env as `peers` has the stack
 * now, and (not for services) the member's stable name on the stack's network.
 */
export function containerRequests(spec: StackSpec, unit: DesiredUnit, members: readonly number[],
  existing: readonly { n: number }[], peers: Peers, options: PlacementOptions): ContainerRequest[] {
  const first = Math.max(0, ...existing.map((c) => c.n).filter(Number.isFinite)) + 1;
  const publish = options.publishWired ? wiredPorts(spec, unit.name) : [];
  return members.map((member, i) => ({
    stack: spec.name, name: unit.name, kind: unit.kind, n: first + i, image: unit.image,
    env: containerEnv(spec, unit, member, peers),
    ...(unit.command && { command: unit.command }),
    ...(unit.port !== undefined && { port: unit.port }),
    ...(publish.length > 0 && { publish }),
    memoryMb: unit.memory, release: options.release, digest: unit.digest, member,
    ...(unit.kind !== 'service' && { aliases: [memberAlias(unit.name, member)] }),
    ...(unit.restart && { restart: unit.restart }),
  }));
}
