import { dirname } from 'node:path';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import {
  collectImages, connectEngine, keys, wholeImageShipper, listContainers, publishedPorts, removeContainer, startContainer, containerName,
  SILENT_PROGRESS, within, type Cluster, type ContainerSpec, type GridHealing, type PlacedContainer, type Progress, type RemoteEngine,
  type ImageCollection, type ImageShipper, type ShipResult,
} from '../../launcher/index.js';
import { HOST_PORT_RANGE, pickHostPorts, routerHostsPlan, stackOf, type RouterHostSight, type ServerSight } from '../../plan/index.js';
import { hostKeyFingerprint, resolveSize, type Provider, type ProviderEvents, type Server } from '../../pacific/index.js';
import { SliceGrid, UnknownSliceError, type BlockInfo } from '../../slicegrid/index.js';
import type { HomeLayout } from '../../home/index.js';
import type { GridView, ServerRow } from '../control.js';
import { BadRequestError } from '../errors.js';
import type { Membership } from './membership.js';
import { ServerStore } from './server-store.js';
import { StackLocks } from '../stack-lock.js';

export interface GridSettings {
  /** Never fewer servers: made at start, and an emptied server above it goes. */
  min: number;
  /** Never more servers. */
  max: number;
  /** The size of a new server: a slug (`s-1vcpu-1gb`) or MB. */
  size: string;
  /** How many servers are router hosts (`grid.routers`); 0 or absent: none. Needs `onJoin` (the agents). */
  routers?: number;
}

/** A router host is marked by a slice on its block: `_router@<n>` (no stack is named so). */
const ROUTER_SLICE = '_router@';
/**
 * The router host's mark in slicegrid, MB: a mark, not the router's memory (81 MB idle with
 * two workers), which is not counted in the server's block, as the agent's is not (docs/hq.md).
 */
export const ROUTER_MB = 1;
const isRouterSlice = (id: string) => id.startsWith(ROUTER_SLICE);

/** What a server is, for its agent and router: a router host gets `quarry router` and ports 80 and 443 public. */
export interface ServerRole {
  router: boolean;
}

export interface GridClusterOptions {
  /** HQ's home: `servers/<id>/settings.json` and `grid/grid.json` live under it. */
  home: HomeLayout;
  etcd: Etcd3;
  /** The engine the images are built on; they are streamed from it to the servers. */
  local: Docker;
  provider: Provider;
  settings: GridSettings;
  /** The quarry private key: HQ logs in to every server with it. */
  privateKey: string;
  log: (line: string) => void;
  /**
   * Runs when a server joins, once its engine answers (installs the agent); a failure undoes
   * the join. Run again for every server when the grid opens, so that agents follow HQ's version.
   */
  onJoin?: (server: Server, engine: Docker, progress: Progress, ship: (image: string) => Promise<ShipResult>, role: ServerRole) => Promise<void>;
  /**
   * How images reach the servers: by layers from HQ's registry (with `prepare`, which makes a
   * server's engine trust it, run once per engine), or whole (`docker save | load`, the default).
   */
  images?: { shipper: ImageShipper; prepare?: (engine: RemoteEngine) => Promise<void> };
  /** The grid's membership in etcd (locknet's hosts, /etc/hosts): kept as servers join and leave. */
  membership?: Membership;
}


/**
 * A grid of servers from a pacific provider, placed by slicegrid: every container is a slice
 * of its memory on one server. When a batch finds no room the grid asks the provider for a
 * server of the configured size (up to `max`); when a server empties it is removed (down to
 * `min`). Each server's engine is reached over one long-lived SSH connection; images travel
 * from HQ's engine to a server only when it lacks them. Containers publish their ports on
 * their server's address, where HQ, the router and the other servers reach them.
 */
export class GridCluster implements Cluster, GridHealing {
  readonly addressing = 'published' as const;
  private readonly store: ServerStore;
  private readonly shipper: ImageShipper;
  private readonly slices: SliceGrid<Progress>;
  private readonly engines = new Map<string, RemoteEngine>();
  private readonly connecting = new Map<string, Promise<RemoteEngine>>();
  /** Grid changes run one at a time, each with the progress of the task that asked. */
  private readonly gate = new StackLocks();
  /** Host ports picked for containers still starting, per server (not yet seen on its engine). */
  private readonly pending = new Map<string, Set<number>>();
  /** Where the next host port is looked for, per server (after the last one handed out). */
  private readonly nextPort = new Map<string, number>();
  /** Servers being drained (or drained and kept): out of slicegrid, still reached until empty. */
  private readonly draining = new Map<string, { remove: boolean }>();
  /** Servers found lost: out of slicegrid, no longer listed nor reached; removed once their work runs elsewhere. */
  private readonly lost = new Set<string>();
  /** Each server's containers as last listed: shown (as `unreachable`) while its engine does not answer. */
  private readonly lastListed = new Map<string, PlacedContainer[]>();
  /** Whether each server's agent and router were last put in step as a router host (true) or not (false). */
  private readonly roles = new Map<string, boolean>();
  /** The round of `keepRouters` under way. */
  private keeping: Promise<void> | undefined;
  /** What `keepRouters` said last about each trouble, so that it says it once. */
  private readonly routerSaid = new Map<string, string>();

  private constructor(private readonly options: GridClusterOptions) {
    this.store = new ServerStore(options.home);
    this.shipper = options.images?.shipper ?? wholeImageShipper(options.local);
    const blockSize = resolveSize(options.settings.size).memory;
    options.home.ensure(dirname(options.home.gridFile));
    // The grid's block source: servers from the provider, told to the progress of the task
    // whose grid change needs them (the context each grid call passes on).
    this.slices = new SliceGrid<Progress>({
      autosize: true, min: options.settings.min, max: options.settings.max, blockSize,
      file: options.home.gridFile,
      blocks: {
        create: async ({ reason, slice, context }) => {
          const progress = context ?? SILENT_PROGRESS;
          progress.step(reason === 'full'
            ? `The grid is full (${slice?.id} needs ${slice?.size} MB): adding a ${options.settings.size} server`
            : `The grid has fewer than ${options.settings.min} server${options.settings.min === 1 ? '' : 's'}: adding a ${options.settings.size} server`);
          const server = await this.join(options.settings.size, progress);
          return { id: server.id, size: server.size.memory };
        },
        destroy: async (block, context) => {
          const progress = context ?? SILENT_PROGRESS;
          progress.step(`Server ${block.id} is empty: removing it`);
          await this.leave(block.id, progress);
        },
      },
    });
  }

  /** Opens the grid: its saved allocation, its servers (made up to `min`), their engines. */
  static async open(options: GridClusterOptions): Promise<GridCluster> {
    const cluster = new GridCluster(options);
    await cluster.restore();
    return cluster;
  }

  private async restore(): Promise<void> {
    const say = (m: string) => this.options.log(`grid: ${m}`);
    const loud: Progress = { step: say, info: say, error: say };
    // With autosize, opening a grid below `min` makes servers (a fresh HQ makes its first ones).
    await this.exclusive(loud, () => this.slices.open({ context: loud }));
    const records = new Map(this.store.all().map((s) => [s.id, s]));
    for (const block of this.slices.blocks()) {
      if (!records.has(block.id)) this.options.log(`grid: block ${block.id} has no record under servers/; its containers cannot be reached`);
    }
    for (const server of records.values()) {
      const drain = this.store.draining(server.id);
      if (drain && !this.slices.block(server.id)) {
        this.draining.set(server.id, drain);
        this.options.log(`grid: server ${server.id} is being drained${drain.remove ? ' (then removed)' : ''}; its containers move on`);
        continue;
      }
      if (!this.slices.block(server.id)) {
        this.options.log(`grid: server ${server.id} was recorded but not placed in the grid; adding it back`);
        await this.slices.addBlock({ id: server.id, size: server.size.memory });
      }
    }
    await this.syncMembership(loud);
    await Promise.all([...records.values()].map((s) => this.connect(s).then((engine) => {
      // The agents are checked in the background: one made by an older HQ is replaced.
      const onJoin = this.options.onJoin;
      const role = { router: this.isRouterHost(s.id) };
      if (onJoin) {
        void onJoin(s, engine.docker, loud, (image) => this.ship(s.id, engine, image, loud), role)
          .then(() => { if (this.isRouterHost(s.id) === role.router) this.roles.set(s.id, role.router); })
          .catch((err: unknown) => say(`the agent of ${s.id} could not be checked (${(err as Error).message})`));
      }
    }, (err: unknown) => {
      this.options.log(`grid: cannot reach ${s.id} at ${s.ssh.host}:${s.ssh.port} yet (${(err as Error).message}); trying again when it is needed`);
    })));
    await this.exclusive(loud, async () => {
      while (this.slices.blocks().length < this.options.settings.min) {
        const server = await this.join(this.options.settings.size, loud);
        await this.slices.addBlock({ id: server.id, size: server.size.memory }, { context: loud });
      }
    });
  }

  /**
   * Runs one change of the grid, alone. Its progress goes to the grid calls it makes (as
   * their context) and, while it runs, the provider's own progress goes there too.
   */
  private async exclusive<T>(progress: Progress, work: () => Promise<T>): Promise<T> {
    const unlock = await this.gate.acquire('grid');
    const provider = this.options.provider;
    const forward: ProviderEvents['progress'] = (p) => progress.info(`${p.server ?? provider.name}: ${p.message}`);
    provider.on('progress', forward);
    try {
      return await work();
    } finally {
      provider.off('progress', forward);
      unlock();
    }
  }

  /** A new server from the provider, recorded and reachable; removed again if any step fails. */
  private async join(size: string, progress: Progress): Promise<Server> {
    const server = await this.options.provider.add(size);
    try {
      this.store.save(server);
      // Members before anything starts on it: every firewall lets it in, its own lets the others in.
      await this.options.membership?.sync(this.store.all());
      const engine = await this.connect(server);
      if (this.options.onJoin) {
        await this.options.onJoin(server, engine.docker, progress, (image) => this.ship(server.id, engine, image, progress), { router: false });
        this.roles.set(server.id, false);
      }
      progress.info(`${server.id} joined at ${server.address} (${server.size.slug ?? `${server.size.memory} MB`})`);
      return server;
    } catch (err) {
      progress.error(`${server.id} could not join (${(err as Error).message}); removing it`);
      await this.leave(server.id, progress).catch(() => undefined);
      throw err;
    }
  }

  /** A server leaves: its connection ends, the provider removes it, its record goes. */
  private async leave(id: string, progress: Progress): Promise<void> {
    const engine = this.engines.get(id);
    this.engines.delete(id);
    await engine?.close().catch(() => undefined);
    await this.options.provider.remove(id);
    this.store.forget(id);
    this.roles.delete(id);
    await this.syncMembership(progress);
    for (const key of [keys.server(id), `${keys.server(id)}/load`, keys.serverLocknet(id)]) {
      await this.options.etcd.delete().key(key).catch(() => undefined);
    }
    progress.info(`${id} removed`);
  }

  /** Servers whose engine did not answer the last probe (shown `unreachable`). */
  private readonly unanswered = new Set<string>();
  /** Servers whose engine did not answer the last listing in time (shown `unreachable` until one does). */
  private readonly unlisted = new Set<string>();
  /** Containers removed while their server did not answer (id → server): stopped once it answers. */
  private readonly orphans = new Map<string, string>();

  /** Stops, in the background, the containers removed while this server did not answer. */
  private stopOrphans(server: string, engine: Docker, listed: PlacedContainer[]): void {
    for (const [id, on] of this.orphans) {
      if (on !== server) continue;
      this.orphans.delete(id);
      if (!listed.some((c) => c.id === id)) continue;
      void removeContainer(engine, id, 2).catch((err: unknown) => this.options.log(`grid: could not stop ${id.slice(0, 12)} on ${server} (${(err as Error).message})`));
    }
  }

  /** Notes a probe's answer for `quarry servers`. */
  noteProbe(id: string, answered: boolean): void {
    if (answered) this.unanswered.delete(id);
    else this.unanswered.add(id);
  }

  /** etcd's membership made that of the servers recorded now; a failure is said, not thrown. */
  private async syncMembership(progress: Progress): Promise<void> {
    if (!this.options.membership) return;
    try {
      await this.options.membership.sync(this.store.all());
    } catch (err) {
      progress.error(`cannot write the grid's membership to etcd (${(err as Error).message}); firewalls keep the one they have`);
    }
  }

  private connect(server: Server): Promise<RemoteEngine> {
    const have = this.engines.get(server.id);
    if (have) return Promise.resolve(have);
    let pending = this.connecting.get(server.id);
    if (!pending) {
      pending = connectEngine({
        host: server.ssh.host, port: server.ssh.port, user: server.ssh.user,
        privateKey: this.options.privateKey, hostKey: server.ssh.hostKey,
      }, { name: server.id, log: this.options.log }).then((engine) => {
        this.engines.set(server.id, engine);
        // A record with no host key (a droplet made before quarry pinned them, without waiting
        // for its sshd) is pinned to the key shown now, once, and kept in the record.
        const record = this.store.get(server.id);
        if (record && record.ssh.hostKey === null && engine.hostKey !== '') {
          this.store.save({ ...record, ssh: { ...record.ssh, hostKey: engine.hostKey } });
          this.options.log(`grid: server ${server.id} had no pinned host key (made before quarry pinned them); pinned the one it showed now, ${hostKeyFingerprint(engine.hostKey)}`);
        }
        return engine;
      }).finally(() => this.connecting.delete(server.id));
      this.connecting.set(server.id, pending);
    }
    return pending;
  }

  private record(id: string): Server {
    const server = this.store.get(id);
    if (!server) throw new BadRequestError(`no server '${id}' in the grid (quarry servers lists them)`);
    return server;
  }

  async collectImages(decide: (present: string[]) => readonly string[], minAgeMs?: number): Promise<ImageCollection[]> {
    const ids = this.listedServers().filter((id) => !this.unreachable(id));
    const done = await Promise.allSettled(ids.map(async (id) =>
      within(collectImages(await this.engineOf(id), decide, minAgeMs === undefined ? {} : { minAgeMs }), 60_000, `${id}'s engine`)));
    return done.flatMap((d) => (d.status === 'fulfilled' ? [d.value] : []));
  }

  forgetPushed(): void {
    this.shipper.forgetPushed();
  }

  /** Brings an image to a server's engine, as `images` says (by layers from the registry, or whole). */
  private ship(serverId: string, engine: RemoteEngine, image: string, progress: Progress): Promise<ShipResult> {
    const prepare = this.options.images?.prepare;
    return this.shipper.ship(engine.docker, image, {
      server: serverId, progress: (m) => progress.info(m), ...(prepare && { prepare: () => prepare(engine) }),
    });
  }

  private async engineOf(id: string): Promise<Docker> {
    return (await this.connect(this.record(id))).docker;
  }

  /** The servers whose containers are listed: the grid's, and those being drained. */
  private listedServers(): string[] {
    return [...this.slices.blocks().map((b) => b.id), ...this.draining.keys()].filter((id) => this.store.get(id) && !this.lost.has(id));
  }

  /**
   * Every quarry container on the grid's servers. A server whose engine does not answer within
   * a few seconds does not hold the listing up: its containers are given as last seen, in
   * state `unreachable`, so `ps`, deploys and the heal loop go on.
   */
  async list(stack?: string, unit?: string): Promise<PlacedContainer[]> {
    const found = await Promise.all(this.listedServers().map((id) => this.listOn(id, stack, unit)));
    return found.flat().sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  }

  /** One server's quarry containers (of a stack, of a unit), or as last seen, `unreachable`, when it does not answer in time. */
  private async listOn(id: string, stack?: string, unit?: string): Promise<PlacedContainer[]> {
    try {
      const engine = await within(this.engineOf(id), ENGINE_ANSWER_MS, `${id}'s engine`);
      const containers = await within(listContainers(engine, stack, unit), ENGINE_ANSWER_MS, `${id}'s engine`);
      const placed = containers.map((c) => ({ ...c, server: id }));
      this.unlisted.delete(id);
      this.stopOrphans(id, engine, placed);
      if (stack === undefined && unit === undefined) this.lastListed.set(id, placed);
      else this.lastListed.set(id, [...(this.lastListed.get(id) ?? []).filter((c) => !placed.some((p) => p.name === c.name) && !matches(c, stack, unit)), ...placed]);
      return placed;
    } catch {
      this.unlisted.add(id);
      return (this.lastListed.get(id) ?? []).filter((c) => matches(c, stack, unit)).map((c) => ({ ...c, state: 'unreachable' }));
    }
  }

  healing(): GridHealing {
    return this;
  }

  /** Whether a server is a router host now: its block holds a router slice. */
  isRouterHost(id: string): boolean {
    return this.slices.block(id)?.slices.some(isRouterSlice) ?? false;
  }

  /** Says a trouble of `keepRouters` once (until it changes or goes). */
  private sayRouters(progress: Progress, key: string, message: string | undefined): void {
    if (message === undefined) {
      this.routerSaid.delete(key);
      return;
    }
    if (this.routerSaid.get(key) === message) return;
    this.routerSaid.set(key, message);
    progress.error(message);
  }

  /**
   * Keeps `grid.routers` router hosts (docs/hq.md, "Router hosts"): `routerHostsPlan` decides
   * which servers to mark (a small slice on their block, kept in grid.json) or
   * unmark, and then every server whose agent and router are not in step with its mark gets them
   * so (a router host: `quarry-router` and its firewall's ports 80 and 443; any other: neither).
   * New router hosts are put in step before old ones lose theirs. Rounds never overlap; the heal
   * loop runs one every second, so a lost router host's place is taken once it has left the grid.
   */
  keepRouters(progress: Progress): Promise<void> {
    const onJoin = this.options.onJoin;
    if (!onJoin) return Promise.resolve();
    this.keeping ??= (async () => {
      try {
        await this.exclusive(progress, () => this.markRouters(progress));
        this.sayRouters(progress, 'plan', undefined);
        const ids = this.listedServers().filter((id) => this.engines.has(id) && !this.unreachable(id));
        const wanted = (id: string) => this.isRouterHost(id);
        // Router hosts first: a new one serves before an old one stops.
        for (const id of [...ids].sort((a, b) => Number(wanted(b)) - Number(wanted(a)))) {
          const router = wanted(id);
          if (this.roles.get(id) === router) continue;
          const server = this.store.get(id);
          const engine = this.engines.get(id);
          if (!server || !engine) continue;
          try {
            if (router) progress.step(`${id} is a router host: starting quarry router on ${server.address}:80 and :443`);
            await onJoin(server, engine.docker, progress, (image) => this.ship(id, engine, image, progress), { router });
            this.roles.set(id, router);
            this.sayRouters(progress, id, undefined);
            progress.info(router ? `${id} is a router host: web traffic to ${server.address}:80 (and :443 for domains with a certificate)`
              : `${id} is not a router host: its router is stopped and its ports 80 and 443 closed`);
          } catch (err) {
            this.sayRouters(progress, id, `the router of ${id} could not be ${router ? 'started' : 'stopped'} (${(err as Error).message}); trying again`);
          }
        }
      } catch (err) {
        this.sayRouters(progress, 'plan', `router hosts: ${(err as Error).message}; trying again`);
      } finally {
        this.keeping = undefined;
      }
    })();
    return this.keeping;
  }

  /** Marks and unmarks router hosts as `routerHostsPlan` says (under the grid's gate). */
  private async markRouters(progress: Progress): Promise<void> {
    const blocks = this.slices.blocks().filter((b) => this.store.get(b.id) && !this.lost.has(b.id));
    const sights: RouterHostSight[] = blocks.map((b) => ({
      id: b.id, router: b.slices.some(isRouterSlice), tags: b.tags, containers: b.slices.filter((s) => !isRouterSlice(s)).length,
      free: b.free, ready: this.engines.has(b.id) && !this.unreachable(b.id),
    }));
    const plan = routerHostsPlan(sights, this.options.settings.routers ?? 0, ROUTER_MB);
    for (const id of plan.unmark) {
      progress.step(`${id} is no longer a router host (grid.routers is ${this.options.settings.routers ?? 0})`);
      for (const slice of this.slices.block(id)?.slices.filter(isRouterSlice) ?? []) await this.slices.remove(slice, { context: progress });
    }
    const next = (): string => {
      let n = 1;
      while (this.slices.slice(`${ROUTER_SLICE}${n}`)) n++;
      return `${ROUTER_SLICE}${n}`;
    };
    for (const id of plan.mark) {
      const slice = next();
      const placed = await this.slices.add(slice, ROUTER_MB, [], { group: null, context: progress });
      if (placed.id !== id) await this.slices.move(slice, id, { context: progress });
      progress.info(`${id} becomes a router host (grid.routers ${this.options.settings.routers ?? 0})`);
    }
    if (plan.short > 0 && sights.every((s) => s.ready)) {
      // No server has room for a router: the grid grows for it (within grid.max), as for a container.
      try {
        for (let i = 0; i < plan.short; i++) await this.slices.add(next(), ROUTER_MB, [], { group: null, context: progress });
        this.sayRouters(progress, 'short', undefined);
      } catch (err) {
        this.sayRouters(progress, 'short', `no server has ${ROUTER_MB} MB free for a router host and the grid cannot grow (${(err as Error).message}); it is tried again`);
      }
    }
  }

  /** What HQ sees of each server for healing: its agent's record, its drain, its stacks (its engine is not asked here). */
  async sight(): Promise<ServerSight[]> {
    let records: Record<string, string>;
    try {
      records = await within(this.options.etcd.getAll().prefix('/quarry/servers/').strings(), ENGINE_ANSWER_MS, 'etcd');
    } catch {
      return []; // etcd does not answer: no lease says anything now
    }
    const sights: ServerSight[] = [];
    for (const block of this.slices.blocks()) {
      if (!this.store.get(block.id) || this.lost.has(block.id)) continue;
      sights.push({ id: block.id, agent: records[keys.server(block.id)] !== undefined, stacks: block.slices.filter((s) => !isRouterSlice(s)).map(stackOf) });
    }
    for (const [id, drain] of this.draining) {
      if (this.lost.has(id)) continue;
      // Only its own engine: the loop looks every second, and a drain takes minutes.
      const listed = await this.listOn(id);
      sights.push({ id, agent: records[keys.server(id)] !== undefined, draining: drain, stacks: listed.map((c) => c.stack) });
    }
    return sights;
  }

  /** Whether a server's docker engine answers within a few seconds (over its SSH connection, made again if it dropped). */
  async probe(id: string): Promise<boolean> {
    try {
      await within((async () => (await this.engineOf(id)).ping())(), ENGINE_ANSWER_MS, `${id}'s engine`);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A server found lost: out of the grid's placement at once (its slices freed, nothing listed,
   * placed or reached there any more, its connection closed). Its block leaves slicegrid now,
   * or, when that would take the grid below `min`, once a replacement joined (`forgetServer`).
   * Its containers are then started elsewhere by whoever asked (each stack converged), and
   * `forgetServer` removes it. Returns its address (routes that name it can go at once).
   */
  async loseServer(id: string, progress: Progress): Promise<string | undefined> {
    return this.exclusive(progress, async () => {
      this.lost.add(id);
      const address = this.store.get(id)?.address;
      const block = this.slices.block(id);
      if (block) {
        // Freed one by one: an empty block above `min` is destroyed by slicegrid on the way.
        for (const slice of block.slices) await this.slices.remove(slice, { context: progress }).catch(() => undefined);
        if (this.slices.block(id) && this.slices.blocks().length > this.options.settings.min) {
          await this.slices.removeBlock(id, { context: progress });
        }
      }
      this.draining.delete(id);
      const engine = this.engines.get(id);
      this.engines.delete(id);
      void engine?.close().catch(() => undefined);
      return address;
    });
  }

  /**
   * Removes a lost server for good: a replacement joins first when the grid would go below
   * `min` without it; then it leaves slicegrid, its provider removes it, and it leaves the
   * membership and etcd.
   */
  async forgetServer(id: string, progress: Progress): Promise<void> {
    await this.exclusive(progress, async () => {
      if (this.slices.block(id)) {
        if (this.slices.blocks().length <= this.options.settings.min) {
          if (this.slices.blocks().length >= this.options.settings.max) {
            throw new BadRequestError(`lost server ${id} cannot leave the grid: it has ${this.options.settings.min} servers at least and ${this.options.settings.max} at most (grid.min = grid.max); raise grid.max so that a replacement can join`);
          }
          progress.step(`The grid keeps at least ${this.options.settings.min} server${this.options.settings.min === 1 ? '' : 's'}: a replacement for ${id} joins`);
          const server = await this.join(this.options.settings.size, progress);
          await this.slices.addBlock({ id: server.id, size: server.size.memory }, { context: progress });
        }
        await this.slices.removeBlock(id, { context: progress });
      }
      // Freeing its slices may have emptied it, and slicegrid removed it already (above `min`).
      if (this.store.get(id)) await this.leave(id, progress);
      this.lost.delete(id);
      this.lastListed.delete(id);
    });
  }

  /**
   * Starts draining a server: it leaves the grid's placement (slicegrid re-plans its slices on
   * the others, growing the grid through the provider within `max` when they do not fit, and
   * the room is held for their replacements), and stays reached until its containers have
   * moved. Kept under its record, so a drain goes on after HQ restarts.
   */
  async drainServer(id: string, remove: boolean, progress: Progress): Promise<void> {
    await this.exclusive(progress, async () => {
      this.record(id);
      const already = this.draining.get(id);
      if (already) {
        this.draining.set(id, { remove: remove || already.remove });
        this.store.saveDraining(id, this.draining.get(id));
        return;
      }
      const block = this.slices.block(id);
      if (!block) throw new BadRequestError(`no server '${id}' in the grid (quarry servers lists them)`);
      if (this.slices.blocks().length <= this.options.settings.min) {
        if (this.slices.blocks().length >= this.options.settings.max) {
          throw new BadRequestError(`server ${id} cannot be drained: the grid keeps ${this.options.settings.min} servers at least and ${this.options.settings.max} at most (grid.min = grid.max); raise grid.max so that one can join in its place`);
        }
        progress.step(`The grid keeps at least ${this.options.settings.min} server${this.options.settings.min === 1 ? '' : 's'}: one joins before ${id} is drained`);
        const server = await this.join(this.options.settings.size, progress);
        await this.slices.addBlock({ id: server.id, size: server.size.memory }, { context: progress });
      }
      const moving = [...block.slices];
      if (moving.length > 0) progress.step(`Making room elsewhere for ${moving.length} container${moving.length === 1 ? '' : 's'} of ${id}`);
      // The plan moves each slice onto another server (or a new one); the moved slices are then
      // freed, so that the containers that replace them find that room.
      await this.slices.removeBlock(id, { context: progress });
      for (const slice of moving) await this.slices.remove(slice, { context: progress }).catch(() => undefined);
      this.draining.set(id, { remove });
      this.store.saveDraining(id, { remove });
    });
  }

  /** A drained server back in the grid's placement. */
  async undrainServer(id: string, progress: Progress): Promise<ServerRow> {
    return this.exclusive(progress, async () => {
      const server = this.record(id);
      if (!this.draining.has(id)) throw new BadRequestError(`server ${id} is not drained`);
      const block = await this.slices.addBlock({ id, size: server.size.memory }, { context: progress });
      this.draining.delete(id);
      this.store.saveDraining(id, undefined);
      progress.info(`${id} takes containers again`);
      return this.row(block, { agent: true, firewall: 'unknown' });
    });
  }

  async start(specs: ContainerSpec[], progress: Progress): Promise<PromiseSettledResult<PlacedContainer>[]> {
    const ids = specs.map((s) => containerName(s.stack, s.name, s.n));
    const placed = await this.exclusive(progress, async () => {
      const planned = await this.slices.addMany(specs.map((s, i) => ({ id: ids[i]!, size: s.memoryMb })), { context: progress });
      return this.awayFromUnreachable(planned, progress);
    });
    const where = new Map(placed.map((p) => [p.id, p.block]));
    return Promise.allSettled(specs.map(async (spec, i) => {
      const id = ids[i]!;
      const serverId = where.get(id)!;
      try {
        const server = this.record(serverId);
        const remote = await this.connect(server);
        const engine = remote.docker;
        await this.ship(serverId, remote, spec.image, progress);
        const hostPorts = await this.reservePorts(serverId, engine, spec);
        try {
          const started = await startContainer(engine, { ...spec, publishHost: server.address, hostPorts });
          return { ...started, server: serverId };
        } finally {
          for (const port of Object.values(hostPorts)) this.pending.get(serverId)?.delete(port);
        }
      } catch (err) {
        await this.exclusive(progress, () => this.free(id, progress));
        throw err;
      }
    }));
  }

  /** Whether a server does not answer now: its last listing or probe failed, or it is lost. */
  private unreachable(id: string): boolean {
    return this.unlisted.has(id) || this.unanswered.has(id) || this.lost.has(id);
  }

  /**
   * Slices slicegrid put on a server that does not answer now are moved to one that does and
   * has room, so that a deploy never waits on a dead server. With no such room the start
   * fails at once and says why; HQ replaces the server once it is found lost.
   */
  private async awayFromUnreachable(placed: Array<{ id: string; block: string; size: number }>, progress: Progress): Promise<Array<{ id: string; block: string }>> {
    const out: Array<{ id: string; block: string }> = [];
    for (const p of placed) {
      if (!this.unreachable(p.block)) {
        out.push(p);
        continue;
      }
      const to = this.slices.blocks()
        .filter((b) => b.id !== p.block && !this.unreachable(b.id) && b.free >= p.size)
        .sort((a, b) => a.free - b.free)[0];
      let target = to?.id;
      if (target === undefined && this.slices.blocks().length < this.options.settings.max) {
        progress.step(`${p.block} does not answer and no other server has room for ${p.id} (${p.size} MB): adding a ${this.options.settings.size} server`);
        const server = await this.join(this.options.settings.size, progress);
        target = (await this.slices.addBlock({ id: server.id, size: server.size.memory }, { context: progress })).id;
      }
      if (target === undefined) {
        for (const q of placed) await this.free(q.id, progress);
        throw new BadRequestError(`server ${p.block} does not answer, no other server has room for ${p.id} (${p.size} MB), and the grid has its most servers (grid.max ${this.options.settings.max}); HQ replaces it once its agent's lease expires (a few seconds): try again then`);
      }
      await this.slices.move(p.id, target, { context: progress });
      progress.info(`${p.id} goes to ${target}: ${p.block} does not answer`);
      out.push({ id: p.id, block: target });
    }
    return out;
  }

  /**
   * Host ports for a container's published ports on a server, chosen now and kept for its
   * life: docker's restart policy starts a crashed container on the same ports, so the routes,
   * endpoints and env that name them stay right. Picked from what the server's containers hold
   * and what other starts on it have just taken, one server at a time.
   */
  private async reservePorts(serverId: string, engine: Docker, spec: ContainerSpec): Promise<Record<number, number>> {
    const wanted = publishedPorts(spec);
    if (wanted.length === 0) return {};
    const unlock = await this.gate.acquire(`ports:${serverId}`);
    try {
      const held = (await listContainers(engine)).flatMap((c) => Object.values(c.hostPorts));
      const pending = this.pending.get(serverId) ?? new Set<number>();
      this.pending.set(serverId, pending);
      const next = this.nextPort.get(serverId) ?? Math.max(HOST_PORT_RANGE.from - 1, ...held) + 1;
      const ports = pickHostPorts(wanted.length, new Set([...held, ...pending]), next);
      if (!ports) throw new BadRequestError(`server ${serverId} has no host ports left for ${spec.name}`);
      this.nextPort.set(serverId, ports.at(-1)! + 1);
      for (const port of ports) pending.add(port);
      return Object.fromEntries(wanted.map((p, i) => [p, ports[i]!]));
    } finally {
      unlock();
    }
  }

  async remove(container: PlacedContainer, progress: Progress, graceSeconds?: number): Promise<void> {
    if (this.unreachable(container.server) || container.state === 'unreachable') {
      // Not waited for: it is stopped when its server answers again (the next listing), or goes with its server.
      if (!this.lost.has(container.server)) this.orphans.set(container.id, container.server);
      progress.info(`${container.server} does not answer: ${container.name} is stopped when it answers again, or goes with it`);
    } else {
      const grace = graceSeconds ?? 10;
      try {
        await within((async () => removeContainer(await this.engineOf(container.server), container.id, grace))(),
          (grace + 5) * 1000 + ENGINE_ANSWER_MS, `${container.server}'s engine`);
      } catch (err) {
        if (container.state !== 'unreachable' && (await this.probe(container.server))) throw err;
        progress.info(`${container.server} does not answer: ${container.name} is given up (it stops with its server)`);
      }
    }
    await this.exclusive(progress, () => this.free(container.name, progress));
  }

  /** Frees a slice; with autosize its server goes if that emptied it (above `min`). */
  private async free(id: string, progress: Progress): Promise<void> {
    try {
      await this.slices.remove(id, { context: progress });
    } catch (err) {
      if (!(err instanceof UnknownSliceError)) throw err;
    }
  }

  engine(server: string): Docker {
    const engine = this.engines.get(server);
    if (!engine) throw new BadRequestError(`server ${server} is not connected; quarry servers shows its state`);
    return engine.docker;
  }

  host(container: PlacedContainer): string | undefined {
    return this.store.get(container.server)?.address;
  }

  reach(container: PlacedContainer, port: number): { host: string; port: number } | undefined {
    const host = this.host(container);
    const published = container.hostPorts[port];
    return host && published !== undefined ? { host, port: published } : undefined;
  }

  async servers(): Promise<ServerRow[]> {
    const found = await within(this.options.etcd.getAll().prefix('/quarry/servers/').strings(), ENGINE_ANSWER_MS, 'etcd').catch(() => ({} as Record<string, string>));
    const status = new Map<string, Pick<ServerRow, 'agent' | 'firewall'>>();
    for (const block of this.slices.blocks()) {
      const agent = found[keys.server(block.id)] !== undefined;
      let firewall: ServerRow['firewall'] = agent ? 'off' : 'unknown';
      const locknet = found[keys.serverLocknet(block.id)];
      if (agent && locknet !== undefined) {
        try {
          firewall = (JSON.parse(locknet) as { state?: string }).state === 'failed' ? 'failed' : 'on';
        } catch {
          firewall = 'unknown';
        }
      }
      status.set(block.id, { agent, firewall });
    }
    const rows = this.slices.blocks().map((block) => this.row(block, status.get(block.id)!));
    for (const [id, drain] of this.draining) {
      const server = this.store.get(id);
      if (!server || this.lost.has(id)) continue;
      const containers = (this.lastListed.get(id) ?? []).length;
      const used = (this.lastListed.get(id) ?? []).reduce((sum, c) => sum + c.memoryMb, 0);
      rows.push({
        id, provider: server.provider, address: server.address, size: server.size.slug ?? null,
        memory: server.size.memory, used, free: server.size.memory - used, containers,
        state: containers > 0 ? `draining${drain.remove ? ' (then removed)' : ''}` : 'drained', agent: found[keys.server(id)] !== undefined, router: false,
        firewall: found[keys.serverLocknet(id)] !== undefined ? 'on' : 'unknown',
      });
    }
    return rows;
  }

  private row(block: BlockInfo, status: Pick<ServerRow, 'agent' | 'firewall'>): ServerRow {
    const server = this.store.get(block.id);
    return {
      id: block.id, provider: server?.provider ?? '?', address: server?.address ?? '?', size: server?.size.slug ?? null,
      memory: block.size, used: block.used, free: block.free, containers: block.slices.filter((s) => !isRouterSlice(s)).length,
      router: block.slices.some(isRouterSlice),
      state: !server ? 'unknown' : this.lost.has(block.id) ? 'lost' : (!this.engines.has(block.id) || this.unlisted.has(block.id) || (!status.agent && this.unanswered.has(block.id))) ? 'unreachable' : server.state, ...status,
    };
  }

  async grid(stack?: string): Promise<GridView> {
    return {
      drawing: this.slices.draw(stack !== undefined ? { stack } : {}),
      servers: this.slices.blocks().map((b) => ({
        id: b.id, address: this.store.get(b.id)?.address ?? '?', size: b.size, used: b.used, free: b.free,
        slices: b.slices.filter((s) => stack === undefined || s.startsWith(`${stack}.`)).map((s) => ({ id: s, size: this.slices.slice(s)?.size ?? 0 })),
      })),
      autosize: true, min: this.options.settings.min, max: Number.isFinite(this.options.settings.max) ? this.options.settings.max : null,
    };
  }

  async addServer(size: string | undefined, progress: Progress): Promise<ServerRow> {
    return this.exclusive(progress, async () => {
      if (this.slices.blocks().length >= this.options.settings.max) {
        throw new BadRequestError(`the grid has its most servers (max ${this.options.settings.max}); raise grid.max in HQ's config to add more`);
      }
      const asked = size ?? this.options.settings.size;
      progress.step(`Adding a ${asked} server`);
      const server = await this.join(asked, progress);
      const block = await this.slices.addBlock({ id: server.id, size: server.size.memory }, { context: progress });
      return this.row(block, { agent: false, firewall: 'unknown' });
    });
  }

  async removeServer(id: string, progress: Progress): Promise<ServerRow> {
    return this.exclusive(progress, async () => {
      const drained = this.draining.get(id);
      if (drained) {
        const left = (await this.list()).filter((c) => c.server === id);
        if (left.length > 0) throw new BadRequestError(`server ${id} is still draining (${left.map((c) => c.name).join(', ')}); wait for quarry servers drain to finish`);
        const server = this.record(id);
        progress.step(`Removing drained server ${id}`);
        await this.leave(id, progress);
        this.draining.delete(id);
        return {
          id, provider: server.provider, address: server.address, size: server.size.slug ?? null, memory: server.size.memory,
          used: 0, free: server.size.memory, containers: 0, state: 'removed', agent: false, firewall: 'unknown',
        };
      }
      const block = this.slices.block(id);
      if (!block) throw new BadRequestError(`no server '${id}' in the grid (quarry servers lists them)`);
      const running = block.slices.filter((s) => !isRouterSlice(s));
      if (running.length > 0) {
        throw new BadRequestError(`server ${id} runs ${running.length} container${running.length === 1 ? '' : 's'} (${running.join(', ')}); scale them down or remove their stacks first`);
      }
      if (running.length < block.slices.length) {
        throw new BadRequestError(`server ${id} is a router host (web traffic reaches the grid at ${this.store.get(id)?.address ?? id}); drain it with quarry servers drain ${id} --remove: another server becomes a router host in its place (point DNS at it)`);
      }
      if (this.slices.blocks().length <= this.options.settings.min) {
        throw new BadRequestError(`the grid keeps at least ${this.options.settings.min} server${this.options.settings.min === 1 ? '' : 's'} (grid.min); lower it in HQ's config to remove ${id}`);
      }
      progress.step(`Removing server ${id}`);
      const row = this.row(block, { agent: false, firewall: 'unknown' });
      await this.slices.removeBlock(id, { context: progress });
      await this.leave(id, progress);
      return { ...row, state: 'removed' };
    });
  }

  async close(): Promise<void> {
    await this.slices.flush().catch(() => undefined);
    await Promise.all([...this.engines.values()].map((e) => e.close().catch(() => undefined)));
    this.engines.clear();
    await this.options.provider.close();
  }
}

/** How long a server's engine (or etcd) gets to answer a look before it counts as not answering. */
const ENGINE_ANSWER_MS = 4000;

function matches(c: PlacedContainer, stack: string | undefined, unit: string | undefined): boolean {
  return (stack === undefined || c.stack === stack) && (unit === undefined || c.unit === unit);
}

