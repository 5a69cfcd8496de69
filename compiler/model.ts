/** The compiled stack: what the compiler hands to the plan and the runners. Plain data. */

export type NodeType = 'service' | 'web' | 'worker';
export type PortKind = 'push' | 'query';
export type PortDir = 'in' | 'out';

export interface PortSpec {
  kind: PortKind;
  dir: PortDir;
  /** For `in`: the fields each log (or request) must carry. For `out`: the fields it carries. */
  fields: string[];
}

export interface NodeSpec {
  name: string;
  type: NodeType;
  /** An image to run as it is, or… */
  image?: string;
  /** …a folder with a Dockerfile, root-relative. */
  build?: string;
  /** Overrides the image's command. */
  command?: string[];
  port?: number;
  memory: number;
  domains: string[];
  /** `tls: auto`: HQ gets its domains' certificates by ACME (HTTP-01) and renews them. */
  tls?: 'auto';
  health?: string;
  scale: number;
  ports: Record<string, PortSpec>;
  /** sha256 of the build folder's content (files, their paths and modes); absent for `image`. */
  buildDigest?: string;
  /** `restart:` as quarry.yml gives it; absent when it gives none. */
  restart?: RestartSpec;
}

/**
 * How a unit's crashed containers are restarted (quarry.yml `restart:`), each part as given:
 * a part left out takes the plan's default (plan/restart.ts, DEFAULT_RESTART).
 */
export interface RestartSpec {
  /** Restarts allowed within `intervalMs` before a container is marked failed. */
  attempts?: number;
  intervalMs?: number;
  /** The wait before the second restart (the first is at once); doubled for each one after. */
  delayMs?: number;
  maxDelayMs?: number;
}

export interface ShardSpec {
  min: number;
  max: number;
  /** `round-robin`, or `hash:<field>`. */
  by: string;
}

export interface ClassSpec {
  name: string;
  /** `elements/<class>`, root-relative. */
  folder: string;
  ports: Record<string, PortSpec>;
  memory: number;
  shardable: boolean;
  cost: number;
  /** The code file the runtime starts, relative to the class's folder. */
  main?: string;
  /** The class folder has its own Dockerfile; otherwise it runs on the base image. */
  dockerfile: boolean;
  /** sha256 of the class folder's content. */
  digest: string;
}

export interface ElementSpec {
  name: string;
  class: string;
  config: Record<string, unknown>;
  memory: number;
  /** A fixed number of members (`scale`), or the starting number of a load shard. */
  scale: number;
  shard?: ShardSpec;
  /** `restart:` as the topology gives it; absent when it gives none. */
  restart?: RestartSpec;
}

export interface ConnectionSpec {
  kind: PortKind;
  from: { name: string; port: string };
  to: { name: string; port: string };
}

export interface StackSpec {
  name: string;
  env: Record<string, string>;
  nodes: NodeSpec[];
  classes: ClassSpec[];
  elements: ElementSpec[];
  connections: ConnectionSpec[];
  /**
   * quarry.yml's `autoscale:` (docs/autoscale.md), when written: whether load shards
   * (`shard: {min, max}`) are sized by load (default yes), and the most element instances the
   * stack may run, counting every member of every element (`max_instances`; none: no cap).
   */
  autoscale?: AutoscaleSpec;
}

export interface AutoscaleSpec {
  enabled: boolean;
  maxInstances?: number;
}
