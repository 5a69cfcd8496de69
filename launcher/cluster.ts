import type { ImageCollection } from './image-gc.js';
import type Docker from 'dockerode';
import type { ContainerSpec, RunningContainer } from './containers.js';
import type { Progress } from './progress.js';
import type { ServerSight } from '../plan/index.js';

/** A container of a stack and the server it runs on. */
export interface PlacedContainer extends RunningContainer {
  /** The server's id: `local` in small mode, the grid's block id otherwise. */
  server: string;
}

/**
 * Where a stack's containers run: one docker engine (small mode), or a grid of servers placed
 * by slicegrid and grown and shrunk by pacific. The executor asks it to start and remove
 * containers and how a container's port is reached; it never picks a server itself.
 */
export interface Cluster {
  /**
   * `alias`: containers reach each other by name on one docker network per stack (one engine).
   * `published`: by a server's address and a published port (servers differ).
   */
  readonly addressing: 'alias' | 'published';
  /** Every quarry container (of one stack, of one unit), on every server. */
  list(stack?: string, unit?: string): Promise<PlacedContainer[]>;
  /**
   * Places the containers (all or none: a grid that cannot make room fails here and nothing
   * started), brings their images to their servers, and starts them, all at once. One result
   * per spec, in order; a container that failed to start has freed its place.
   */
  start(specs: ContainerSpec[], progress: Progress): Promise<PromiseSettledResult<PlacedContainer>[]>;
  /** Stops and removes a container and frees its place; on a grid an emptied server may go. */
  remove(container: PlacedContainer, progress: Progress, graceSeconds?: number): Promise<void>;
  /** The engine of one server. */
  engine(server: string): Docker;
  /** The address a container is reached at: its own on one engine, its server's on a grid. */
  host(container: PlacedContainer): string | undefined;
  /** Where HQ, the router and other servers reach a container's port; undefined when it is not reachable. */
  reach(container: PlacedContainer, port: number): { host: string; port: number } | undefined;
  servers(): Promise<ServerRow[]>;
  grid(stack?: string): Promise<GridView>;
  addServer(size: string | undefined, progress: Progress): Promise<ServerRow>;
  /** What HQ's heal loop may do to the servers: a grid's; undefined in small mode (one machine, nothing to move to). */
  healing(): GridHealing | undefined;
  /**
   * A grid: removes from each reachable server's engine the image tags `decide` picks (old
   * builds; see `collectImages`). Absent: the cluster is HQ's own engine, collected by HQ.
   */
  collectImages?(decide: (present: string[]) => readonly string[], minAgeMs?: number): Promise<ImageCollection[]>;
  /** The registry forgot images: push them again when next needed. */
  forgetPushed?(): void;
  removeServer(id: string, progress: Progress): Promise<ServerRow>;
  close(): Promise<void>;
}

/** A grid's servers as HQ's heal loop sees and changes them (plan/heal.ts decides). */
export interface GridHealing {
  /** Each server: its agent's lease, its drain, its stacks. */
  sight(): Promise<ServerSight[]>;
  /** Whether a server's engine answers within a few seconds. */
  probe(id: string): Promise<boolean>;
  /** Notes a probe's answer (`quarry servers` shows a server whose engine is silent as `unreachable`). */
  noteProbe(id: string, answered: boolean): void;
  /** Takes a lost server out of the grid at once: nothing is listed, placed or reached there any more. Its address. */
  loseServer(id: string, progress: Progress): Promise<string | undefined>;
  /** Removes a lost server through its provider, the membership and etcd. */
  forgetServer(id: string, progress: Progress): Promise<void>;
  /** Takes a server out of placement (room for its containers made elsewhere); its containers are then moved by the caller. */
  drainServer(id: string, remove: boolean, progress: Progress): Promise<void>;
  /** Puts a drained server back into placement. */
  undrainServer(id: string, progress: Progress): Promise<ServerRow>;
  /**
   * Keeps the grid's router hosts (`grid.routers`): marks servers (a lost one's place taken),
   * and puts each server's router (and its firewall's ports 80 and 443) in step with its mark.
   */
  keepRouters?(progress: Progress): Promise<void>;
}

/** One server as `quarry servers` shows it. */
export interface ServerRow {
  id: string;
  provider: string;
  address: string;
  /** The size slug (`s-1vcpu-1gb`), or null for a machine that was measured. */
  size: string | null;
  /** MB: the block's size, and what its slices take and leave. */
  memory: number;
  used: number;
  free: number;
  containers: number;
  /**
   * `active`, `joining`, `leaving`, `unreachable` (its engine does not answer), `lost` (being
   * replaced), `draining`, `drained`, or what the provider says (`off`).
   */
  state: string;
  /** Whether its agent holds its record in etcd now. */
  agent: boolean;
  /**
   * Its firewall (locknet), as its agent reports it: `on` (following the grid's members),
   * `failed` (the last change could not be applied; the rules before it stay), `off` (the agent
   * does not keep it), or `unknown` (no agent reports; rules stay in force without one).
   */
  firewall?: 'on' | 'failed' | 'off' | 'unknown';
  /**
   * A router host: `quarry router` answers web traffic on its ports 80 and 443 (point DNS at
   * its address). In small mode, this machine (HQ's embedded router).
   */
  router?: boolean;
}

/** The allocation of slices onto servers, for `quarry grid`. */
export interface GridView {
  /** slicegrid's drawing. */
  drawing: string;
  servers: Array<{ id: string; address: string; size: number; used: number; free: number; slices: Array<{ id: string; size: number }> }>;
  autosize: boolean;
  min: number;
  max: number | null;
}
