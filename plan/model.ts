import type { ShardSpec } from '../compiler/index.js';
import type { RestartPolicy } from './restart.js';

/** What a unit of a stack is: how it is started and whether it is routed. */
export type UnitKind = 'service' | 'web' | 'worker' | 'element';

/** A node or an element as the plan sees it: one kind of container of a stack. */
export interface DesiredUnit extends UnitDefinition {
  /**
   * Everything that, when it changes, needs new containers (not scale, not domains): the
   * `quarry.digest` label of its containers. Keyed (`DigestOptions`) for every unit but a
   * service, since it covers the stack's env.
   */
  digest: string;
}

/** A unit without its digest: what a stack's units are, for what needs no digest (images, scale). */
export interface UnitDefinition {
  name: string;
  kind: UnitKind;
  /** The image to run: given, or the tag its build gets (content-addressed). */
  image: string;
  /** What to build the image from: a node's build folder, or an element class. */
  build?: { folder: string; dockerfile: boolean; class?: string; main?: string };
  command?: string[];
  port?: number;
  health?: string;
  memory: number;
  scale: number;
  shard?: ShardSpec;
  domains: string[];
  env: Record<string, string>;
  config?: Record<string, unknown>;
  /** How a crashed container of the unit is restarted (quarry.yml `restart:`); default DEFAULT_RESTART. */
  restart?: RestartPolicy;
}

/**
 * The key a unit's digest is made with (HMAC-SHA256 of its definition). The digest covers the
 * stack's env and is a label anyone who may `docker inspect` reads: without a secret key, a
 * short env value could be guessed from it by trying values. HQ keeps its key under its home
 * (`keys/digest.key`); a local run makes its own; `PREVIEW_DIGEST_KEY` is for plans that are
 * only shown. Digests made with different keys differ, so one key serves one place.
 */
export interface DigestOptions {
  digestKey: string;
}

/** One unit as it runs: the part of the last applied plan the next diff needs. */
export interface RunningUnit {
  name: string;
  kind: UnitKind;
  image: string;
  digest: string;
  /** Containers running now (changed by `quarry scale` and by load shards). */
  scale: number;
  /** The scale quarry.yml asked for when it was last applied. */
  declaredScale: number;
  domains: string[];
}

/** What runs of one stack: the `--current` file, and what HQ records after a release. */
export interface CurrentState {
  stack: string;
  units: RunningUnit[];
}

interface Base { stack: string }
type Target = { node: string; element?: never } | { element: string; node?: never };

export type EnsureInstruction = Base & {
  op: 'ENSURE'; node: string; image: string; build?: DesiredUnit['build']; command?: string[];
  memory: number; port?: number; digest: string;
};
export type DeployInstruction = Base & Target & {
  op: 'DEPLOY'; kind: Exclude<UnitKind, 'service'>; image: string; build?: DesiredUnit['build'];
  command?: string[]; port?: number; health?: string; memory: number; scale: number;
  shard?: ShardSpec; env: Record<string, string>; config?: Record<string, unknown>; digest: string;
};
export type ScaleInstruction = Base & Target & { op: 'SCALE'; from: number; to: number };
export type RouteInstruction = Base & { op: 'ROUTE'; node: string; domains: string[]; from: string[] };
export type KillInstruction = Base & Target & { op: 'KILL'; kind: UnitKind };

export type Instruction =
  | EnsureInstruction | DeployInstruction | ScaleInstruction | RouteInstruction | KillInstruction;

export interface Plan {
  stack: string;
  instructions: Instruction[];
  /** Things the user should know that are not instructions (e.g. a service left as it is). */
  notices: string[];
}

export interface PlanOptions extends DigestOptions {
  /** Services to replace even though a push never redeploys services on its own. */
  replace?: string[];
}
