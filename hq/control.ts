import type { StackSpec } from '../compiler/index.js';
import type { GridView, PortMetrics, Progress, ServerRow } from '../launcher/index.js';

export type { GridView, PortMetrics, ServerRow };

/**
 * What HQ's HTTP API and command line can ask of HQ: the seam between the API (hq/api/) and
 * the part that runs stacks (hq/deploy/). Every change (scale, env, rollback) is a task that
 * makes a release; its steps are reported through `progress` as it goes.
 */
export interface HqControl {
  /** The stacks HQ knows (pushed at least once), sorted. */
  stacks(): Promise<string[]>;
  /** The containers of one stack, or of every stack. */
  ps(stack?: string): Promise<PsRow[]>;
  /** What flows through a stack now: each element's instances, rates and busy time, each connection's rate and queue (`quarry top`). */
  top(stack: string): Promise<TopView>;
  /** Sets the number of containers of nodes or elements: `{ web: 3 }`. */
  scale(stack: string, changes: Record<string, number>, progress: Progress): Promise<ReleaseInfo>;
  /** Containers' output, oldest first; with `follow`, keeps going until `signal` aborts. */
  logs(stack: string, name: string | undefined, options: LogOptions, write: (line: LogLine) => void, signal: AbortSignal): Promise<void>;
  /** The stack's releases, newest first. */
  releases(stack: string): Promise<ReleaseInfo[]>;
  /** Makes a new release that restores code, env and scale of release `version`. */
  rollback(stack: string, version: number, progress: Progress): Promise<ReleaseInfo>;
  /** The stack's env as set by `quarry env` (services' addresses not included). */
  env(stack: string): Promise<Record<string, string>>;
  /** Sets and unsets env keys; makes a release that restarts what uses the env. */
  setEnv(stack: string, set: Record<string, string>, unset: string[], progress: Progress): Promise<ReleaseInfo>;
  /** The servers of the grid (in small mode, this machine). */
  servers(): Promise<ServerRow[]>;
  /** The allocation of slices onto servers; with a stack, its slices marked. */
  grid(stack?: string): Promise<GridView>;
  /** Adds a server of `size` (default: the grid's size), once it answers; a task. */
  addServer(size: string | undefined, progress: Progress): Promise<ServerRow>;
  /** Removes an empty server (never below the grid's `min`); a task. */
  removeServer(id: string, progress: Progress): Promise<ServerRow>;
  /**
   * Drains a server: nothing new goes there, and every container on it starts elsewhere,
   * healthy and routed before the old one stops; with `remove`, the server is then removed.
   */
  drainServer(id: string, remove: boolean, progress: Progress): Promise<ServerRow>;
  /** A drained server takes containers again. */
  undrainServer(id: string, progress: Progress): Promise<ServerRow>;
}

/** What the daemon holds of the part that runs stacks: HqControl, the push's hand-off, and its end. */
export interface ControlHandle extends HqControl {
  onRelease: OnRelease;
  close(): Promise<void>;
}

/**
 * What happens to a push once its code compiled and its images are built, before the ref
 * moves: run the plan (the launcher's part). `srcDir` holds the pushed code and stays there
 * once accepted (it becomes what `stacks/<stack>/src` points at). Throwing rejects the push
 * (a QuarryError's message is shown to the pusher as it is); the code is then not published.
 */
export type OnRelease = (stack: string, srcDir: string, spec: StackSpec, progress: Progress, push: PushInfo) => Promise<void>;

/** What a push says beyond its code: the commit, and `git push -o replace=NAME` options. */
export interface PushInfo {
  commit: string;
  /** Services to start anew even though a push never restarts services on its own. */
  replace: string[];
}

export interface LogOptions {
  follow: boolean;
  /** Lines per container from the end of what it wrote so far; default all. */
  tail?: number;
}

export interface LogLine {
  /** The container: `<stack>.<name>.<n>`. */
  container: string;
  stream: 'stdout' | 'stderr';
  /** ISO time docker gave the line. */
  time: string;
  text: string;
}

/** One container, as `quarry ps` shows it. */
export interface PsRow {
  stack: string;
  /** The node or element. */
  name: string;
  kind: 'service' | 'web' | 'worker' | 'element';
  /** `<stack>.<name>.<n>` */
  container: string;
  /** The server it runs on (`local` in small mode). */
  server: string;
  /**
   * docker's state (running, exited, …), or what its caretaker says: `restarting` while it
   * waits to restart it (back-off), `failed` once it gave up (the restart policy's attempts).
   */
  state: string;
  /** healthy, unhealthy, starting, or '-' when the unit has no health check. */
  health: string;
  /** `v3`, the release that started it. */
  release: string;
  /** Where it is reached from the server: `127.0.0.1:49153`, when it has a port. */
  address?: string;
  /**
   * Restarts its caretaker made (0 when it has no care record); null when the care records
   * could not be read in time (etcd slow or away), shown `?`.
   */
  restarts: number | null;
  /** How it last ended, when its caretaker saw it die: its exit code and when (ISO time). */
  lastExit?: { code: number; at: string };
  /**
   * Elements only: logs handled per second over the last interval (its instance's metrics,
   * issue 17); null when there are no fresh figures (none yet, older than 5 s, or etcd slow).
   */
  rate?: number | null;
}

/**
 * `quarry top`: what flows through one stack now, from the element instances' metrics in etcd
 * (`ElementMetrics`, one record per instance, about once a second) and the connections of
 * the stack's last release.
 */
export interface TopView {
  stack: string;
  /** When HQ read the figures (ISO time). */
  at: string;
  /** The release whose connections are shown: `v3`; `-` when the stack has none yet. */
  release: string;
  /** Figures older than this (ms) are stale: their instance has not reported lately. */
  staleAfterMs: number;
  /** Set when HQ could not read the figures (etcd slow or away): why. The lists are then empty of figures. */
  unavailable?: string;
  elements: TopElement[];
  connections: TopConnection[];
}

/** One element of a `TopView`: its sums over its instances with fresh figures (over the stale ones when none is fresh). */
export interface TopElement {
  name: string;
  /** Its class; `-` for an element no longer in the release that still reports. */
  class: string;
  /** The members the release runs; 0 for one no longer in it. */
  scale: number;
  /** Logs handled per second, summed over its instances; null with no figures. */
  rate: number | null;
  /** The mean fraction of time in its handlers (0 to 1); null with no figures. */
  busy: number | null;
  /** Its figures are all older than `staleAfterMs`. */
  stale: boolean;
  instances: TopInstance[];
}

/** One element instance's last figures. */
export interface TopInstance {
  replica: number;
  server: string;
  /** Logs handled per second, and the fraction of time in its handlers (0 to 1). */
  rate: number;
  busy: number;
  /** Its life: a new one after each restart. */
  incarnation: string;
  /** When its figures were read (ISO time), and how old they were when HQ answered (ms). */
  at: string;
  ageMs: number;
  stale: boolean;
  ports: Record<string, PortMetrics>;
}

/**
 * One connection of the stack (an out port to an in port) and what flows through it: the
 * receiving port's figures summed over the receiving element's instances (the sending port's
 * when the receiver reports none, e.g. a node), its queue the fullest receiving instance's.
 */
export interface TopConnection {
  kind: 'push' | 'query';
  from: { name: string; port: string };
  to: { name: string; port: string };
  /** Logs per second (query: queries per second); null when neither end reports. */
  rate: number | null;
  /** Which end the rate was read at. */
  rateAt: 'in' | 'out' | null;
  /** The fullest receiving instance's queue: logs waiting, and its limit (null: not known). */
  queued: number | null;
  queueLimit: number | null;
  /** queued ÷ queueLimit (0 to 1), null when either is unknown. */
  fill: number | null;
  /** NiFi's colours: `low` under 60 %, `mid` 60–85 %, `high` over 85 % of the queue; null when unknown. */
  level: 'low' | 'mid' | 'high' | null;
  /** A receiving instance holds back its senders now. */
  backpressure: boolean;
  /** query connections: the worst receiving instance's median and 99th percentile latency (ms). */
  p50Ms?: number;
  p99Ms?: number;
  /** Its figures are all older than `staleAfterMs`. */
  stale: boolean;
}

export type ReleaseReason = 'push' | 'scale' | 'env' | 'rollback' | 'autoscale';

/** One release of a stack (DESIGN.md: commit, plan, images, env and scale). */
export interface ReleaseInfo {
  stack: string;
  version: number;
  /** ISO time it was made. */
  at: string;
  reason: ReleaseReason;
  /** One line: `push of 1a2b3c4`, `scale web=3`, `env set FOO`, `rollback to v2`. */
  description: string;
  commit: string;
  /** The image of each node and element. */
  images: Record<string, string>;
  /** The number of containers of each node and element. */
  scale: Record<string, number>;
  /** The env keys set by `quarry env` (values are never listed). */
  envKeys: string[];
  /** URLs the stack's web nodes answer on. */
  urls: string[];
}



