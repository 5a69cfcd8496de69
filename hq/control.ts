import type { StackSpec } from '../compiler/index.js';
import type { GridView, Progress, ServerRow } from '../launcher/index.js';

export type { GridView, ServerRow };

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
}

export type ReleaseReason = 'push' | 'scale' | 'env' | 'rollback';

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



