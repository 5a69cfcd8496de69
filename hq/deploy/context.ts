import type Docker from 'dockerode';
import type { Etcd3, Lease } from 'etcd3';
import type { HomeLayout } from '../../home/index.js';
import type { Cluster, ExecutorContext, Progress } from '../../launcher/index.js';
import type { OwnRegistry } from '../registry/index.js';
import type { HqConfig } from '../config.js';
import type { GridCa } from '../keys/index.js';
import type { StackLocks } from '../stack-lock.js';
import type { AutoscaleOptions } from '../../plan/index.js';
import type { StackStore } from './stack-store.js';
import type { TaskStore } from './task-store.js';

/** How HQ's autoscale loop runs (ControlContext `autoscale`; hq/deploy/autoscale.ts). */
export interface AutoscaleLoopOptions {
  /** How often each stack's figures are read and decided on; default 1000 ms. */
  intervalMs?: number;
  /** The controller's settings (docs/autoscale.md); default DEFAULT_AUTOSCALE. */
  controller?: Partial<AutoscaleOptions>;
}

/** What the part of HQ that runs stacks needs (a subset of the daemon's context). */
export interface ControlContext {
  home: HomeLayout;
  etcd: Etcd3;
  docker: Docker;
  /** etcd as a grid's servers reach it: HQ installs an agent on each server that joins. */
  agentEtcd?: string[];
  /** The grid's CA: each agent gets a client certificate for etcd from it. */
  agentCa?: GridCa;
  /** HQ's address as the servers see it: a member of every server's firewall. */
  advertise?: string;
  /** HQ's registry: images reach a grid's servers by layers from it (else whole). */
  registry?: OwnRegistry;
  /** Images tagged more recently are never collected (a push in flight may own them); default 1 hour. */
  imageMinAgeMs?: number;
  /** Where containers run; default: the local engine (`docker`) as the one server. */
  cluster?: Cluster;
  log: (line: string) => void;
  config?: { routerPort?: number; grid?: HqConfig['grid']; keepReleases?: number };
  /** How long new containers get to become healthy; default 60 s. */
  healthTimeoutMs?: number;
  /**
   * How long old web containers' requests in flight get once every router applied the change
   * (or, with no reporting router, the fixed wait before they stop); default 1.5 s.
   */
  drainMs?: number;
  /** How long every reporting router gets to apply a route change before old web containers stop anyway; default 10 s. */
  routerSyncMs?: number;
  /** How often the heal loop looks at the grid's servers; default 2 s. */
  healIntervalMs?: number;
  /** The autoscale loop (hq/deploy/autoscale.ts): false turns it off; default on, each second, DEFAULT_AUTOSCALE. */
  autoscale?: false | AutoscaleLoopOptions;
}

/**
 * What the parts of hq/deploy/ share, made once by `startControl`: the records under the home
 * (releases and env, tasks), the per-stack lock changes take, where containers run, and
 * HQ's etcd lease (endpoints are written under it).
 */
/** Old images collected after tasks (`startImageCollector` in collect.ts). */
export interface ImageCollector {
  /** A task ended: collect soon (once no task runs). */
  request(): void;
  /** Runs one collection now (tests, and HQ's start). */
  collectNow(): Promise<string>;
  stop(): Promise<void>;
}

export interface ControlParts {
  ctx: ControlContext;
  store: StackStore;
  tasks: TaskStore;
  locks: StackLocks;
  cluster: Cluster;
  lease: Lease;
  /** Collects old images after tasks (set once HQ's control has started). */
  collector?: ImageCollector;
  /** The key of the units' digests (`<home>/keys/digest.key`): every plan and executor of HQ's uses it. */
  digestKey: string;
}

/** What a `StackExecutor` carrying out (part of) release `version` gets. */
export function executorContext(parts: ControlParts, progress: Progress, version: number): ExecutorContext {
  return {
    cluster: parts.cluster, etcd: parts.ctx.etcd, lease: parts.lease, progress, release: `v${version}`,
    drainMs: parts.ctx.drainMs ?? 1500, routerSyncMs: parts.ctx.routerSyncMs ?? 10_000, healthTimeoutMs: parts.ctx.healthTimeoutMs ?? 60_000, digestKey: parts.digestKey,
  };
}
