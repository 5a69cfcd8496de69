import type { Etcd3, Lease } from 'etcd3';
import type { StackSpec } from '../compiler/index.js';
import { waitHealthy } from './health.js';
import {
  CONTROL_PORT, memberAlias, aliasPeers, containerRequests, desiredUnits, inPortNumbers, isWired, memberWiring, publishedPeers,
  type CurrentState, type DesiredUnit, type Instruction, type Peers,
} from '../plan/index.js';
import { reshard, sendPeers, type ReshardConsumer, type ReshardProducer } from '../runtime/index.js';
import type { Progress } from './progress.js';
import type { Cluster, PlacedContainer } from './cluster.js';
import { keys, type EndpointRecord } from './etcd-keys.js';
import { waitForRouters } from './router-sync.js';

type RunningContainer = PlacedContainer;

export interface ExecutorContext {
  /** Where containers run: the local engine, or a grid of servers. */
  cluster: Cluster;
  etcd: Etcd3;
  /** HQ's lease: endpoints vanish when HQ is gone for good, and are written again when it restarts. */
  lease: Lease;
  progress: Progress;
  /** The release containers started now are labelled with: `v3`. */
  release: string;
  /**
   * How long the old backends get to finish their requests in flight once every router applied
   * the route change that retired them; with no reporting router (no `/quarry/routers/` record),
   * the fixed wait between that change and stopping them.
   */
  drainMs: number;
  /**
   * How long every reporting router (`/quarry/routers/<id>`) gets to apply a route change before
   * old web containers stop anyway (one line names those that lagged); default 10 s.
   */
  routerSyncMs?: number;
  /** How long new containers get to become healthy. */
  healthTimeoutMs: number;
  /**
   * The stack's control secret: every wired container gets it as `QUARRY_CONTROL_KEY`, and the
   * executor sends it with each change of peers. Stable per stack (HQ keeps it in the stack's
   * folder), and no part of a container's definition (`quarry.digest`), so it replaces nothing.
   * Without one (HQ always gives one), containers get none and refuse every control request:
   * producers then learn new peers only when they restart.
   */
  controlKey?: string;
  /**
   * The key of the units' digests (`quarry.digest`, plan/model.ts `DigestOptions`): HQ's, the
   * one its release records were made with, so that a container of the same definition is
   * recognised as such.
   */
  digestKey: string;
}

/**
 * Carries out a plan on the cluster's servers, instruction by instruction, for one stack:
 * the launcher's half of a release. `spec` is the stack with its env merged in; `before` is
 * what ran; `after` what runs once the plan is done (its scales size shards and wiring).
 */
export class StackExecutor {
  private readonly stack: string;
  private readonly units: Map<string, DesiredUnit>;
  private readonly domains: Map<string, string[]>;

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly spec: StackSpec,
    before: CurrentState | undefined,
    private readonly after: CurrentState,
  ) {
    this.stack = spec.name;
    this.units = new Map(desiredUnits(spec, { digestKey: ctx.digestKey }).map((u) => [u.name, u]));
    this.domains = new Map((before?.units ?? []).map((u) => [u.name, [...u.domains]]));
  }

  private readonly members = (name: string): number =>
    this.after.units.find((u) => u.name === name)?.scale ?? this.units.get(name)?.scale ?? 1;

  private unit(name: string): DesiredUnit {
    const unit = this.units.get(name);
    if (!unit) throw new Error(`${this.stack}: no unit ${name} in the stack being released`);
    return unit;
  }

  async run(instructions: Instruction[]): Promise<void> {
    // Only a started service can move: a plan without ENSURE need not list the grid for it.
    const servicesBefore = instructions.some((s) => s.op === 'ENSURE') ? (await this.peers()).services : {};
    for (const step of instructions) {
      switch (step.op) {
        case 'ENSURE': await this.ensure(this.unit(step.node)); break;
        case 'DEPLOY': await this.deploy(this.unit((step.node ?? step.element)!), step.scale); break;
        case 'SCALE': await this.scale(this.unit((step.node ?? step.element)!), step.to); break;
        case 'ROUTE':
          this.ctx.progress.step(`Routing ${step.domains.length > 0 ? step.domains.join(', ') : 'no domains'} to ${step.node}`);
          this.domains.set(step.node, [...step.domains]);
          await this.rewriteRoutes(step.node);
          break;
        case 'KILL': await this.kill((step.node ?? step.element)!, step.kind === 'web'); break;
      }
    }
    await this.followMovedServices(servicesBefore, instructions);
    await this.writeEnv();
  }

  /**
   * On a grid a service that started anew has a new address (its server's, a new published
   * port). Containers read `<NAME>_HOST`/`_PORT` when they boot, so every other running unit
   * the plan did not deploy is deployed again, healthy before its old containers stop.
   */
  private async followMovedServices(before: Record<string, string>, instructions: Instruction[], fresh: ReadonlySet<string> = new Set()): Promise<void> {
    if (this.ctx.cluster.addressing !== 'published') return;
    const now = (await this.peers()).services;
    const moved = Object.keys(before).filter((k) => now[k] !== undefined && now[k] !== before[k]);
    if (moved.length === 0) return;
    // Units whose every container started after the move booted with the new address already.
    const deployed = new Set([...fresh, ...instructions.filter((s) => s.op === 'DEPLOY' || s.op === 'KILL').map((s) => (s.node ?? s.element)!)]);
    for (const want of this.after.units) {
      const unit = this.units.get(want.name);
      if (!unit || unit.kind === 'service' || deployed.has(unit.name) || want.scale === 0) continue;
      if ((await this.ctx.cluster.list(this.stack, unit.name)).length === 0) continue;
      this.ctx.progress.step(`${moved.join(', ')} changed: ${unit.name} starts again to read it`);
      await this.deploy(unit, want.scale);
    }
  }

  /** Boots a service unless one with the same definition runs. */
  private async ensure(unit: DesiredUnit): Promise<void> {
    const { progress } = this.ctx;
    const existing = await this.ctx.cluster.list(this.stack, unit.name);
    const running = existing.find((c) => c.state === 'running' && c.digest === unit.digest);
    if (running) {
      progress.step(`Service ${unit.name} already runs (${running.name})`);
    } else {
      progress.step(`Starting service ${unit.name} (${unit.image})`);
      await Promise.all(existing.map((c) => this.ctx.cluster.remove(c, progress)));
      const [started] = await this.startHealthy(unit, [0], existing);
      progress.info(`${started!.name} is up`);
    }
    await this.writeEndpoints(unit.name);
  }

  /** New containers for every member, healthy before the routes move and the old ones stop. */
  private async deploy(unit: DesiredUnit, scale: number): Promise<void> {
    const { progress } = this.ctx;
    const old = await this.ctx.cluster.list(this.stack, unit.name);
    progress.step(`Deploying ${unit.kind} ${unit.name}: ${scale} container${scale === 1 ? '' : 's'} of ${unit.image}`);
    const fresh = await this.startHealthy(unit, range(0, scale), old);
    progress.info(`${fresh.map((c) => c.name).join(', ')} healthy`);
    const leaving = new Set(old.map((c) => c.id));
    if (this.ctx.cluster.addressing === 'published') await this.rewireProducersOf(unit.name, leaving);
    await this.retire(unit.name, old);
    await this.writeEndpoints(unit.name);
  }

  private async scale(unit: DesiredUnit, to: number): Promise<void> {
    const { progress } = this.ctx;
    const now = (await this.ctx.cluster.list(this.stack, unit.name)).filter((c) => c.state !== 'exited' && c.state !== 'dead');
    const from = now.length;
    progress.step(`Scaling ${unit.name} from ${from} to ${to}`);
    const hashed = this.hashShard(unit.name);
    if (to > from) {
      const taken = new Set(now.map((c) => c.member));
      const wanted = range(0, to).filter((m) => !taken.has(m)).slice(0, to - from);
      const fresh = await this.startHealthy(unit, wanted, now);
      await this.rewriteRoutes(unit.name);
      // A hash key that moves to a new member must leave its old one first: every producer
      // holds while the members' queues go back to it, then all learn the new members at once.
      await this.changeMembers(unit.name, hashed ? [...now, ...fresh] : []);
    } else if (to < from) {
      const byMember = [...now].sort((a, b) => (b.member ?? b.n) - (a.member ?? a.n));
      const leaving = byMember.slice(0, from - to);
      // Producers stop sending to the members that leave, and what those have not started goes
      // back to the producers (for the members that stay) before they stop: nothing lost, nothing twice.
      await this.changeMembers(unit.name, hashed ? now : leaving, new Set(leaving.map((c) => c.id)));
      await this.retire(unit.name, leaving);
    } else {
      await this.writeEndpoints(unit.name);
      await this.rewireProducersOf(unit.name);
    }
  }

  /** Whether `name` is an element sharded by a field's hash (`shard: {by: hash:<field>}`): its keys move when its members change. */
  private hashShard(name: string): boolean {
    return this.spec.elements.find((e) => e.name === name)?.shard?.by.startsWith('hash:') === true;
  }

  /**
   * Tells the producers of `name` its members now (minus `leaving`): through the re-shard
   * barrier (runtime/reshard.ts) when `shed` names members whose queues must go back first
   * (a hash shard's members, or the members that leave), else at once.
   */
  private async changeMembers(name: string, shed: RunningContainer[], leaving: ReadonlySet<string> = new Set()): Promise<void> {
    const change = async () => {
      await this.writeEndpoints(name, leaving);
      await this.rewireProducersOf(name, leaving);
    };
    const key = this.ctx.controlKey;
    const links = this.spec.connections.filter((c) => c.kind === 'push' && c.to.name === name);
    if (shed.length === 0 || links.length === 0 || key === undefined) return change();
    const producers: ReshardProducer[] = [];
    for (const link of links) {
      for (const c of await this.ctx.cluster.list(this.stack, link.from.name)) {
        const control = c.state === 'running' ? this.ctx.cluster.reach(c, CONTROL_PORT) : undefined;
        if (control) producers.push({ control: `tcp://${control.host}:${control.port}`, port: link.from.port, target: `${name}.${link.to.port}`, name: c.name });
      }
    }
    const consumers: ReshardConsumer[] = [];
    for (const c of shed) {
      const control = this.ctx.cluster.reach(c, CONTROL_PORT);
      if (!control) continue;
      for (const port of new Set(links.map((l) => l.to.port))) consumers.push({ control: `tcp://${control.host}:${control.port}`, port, name: c.name });
    }
    const hashed = this.hashShard(name);
    const result = await reshard(producers, consumers, change, { key });
    const { progress } = this.ctx;
    progress.info(`re-shard of ${name}: ${result.held} producer${result.held === 1 ? '' : 's'} held ${Math.round(result.waitedMs)} ms, ` +
      `${result.shed} queued batch${result.shed === 1 ? '' : 'es'} given back` +
      `${result.drained ? '' : hashed
        ? '; not everything in flight was acknowledged in time, so a key may have run on two members for a moment'
        : '; the members that leave had not finished in time: what they held goes to the others and may come twice'}`);
    if (result.unsupported.length > 0) {
      progress.info(`re-shard of ${name}: ${result.unsupported.join(', ')} did not take part (an older runtime, or no answer): what they held may come twice`);
    }
  }

  private async kill(name: string, web: boolean): Promise<void> {
    this.ctx.progress.step(`Stopping ${name}`);
    const old = await this.ctx.cluster.list(this.stack, name);
    this.domains.set(name, []);
    const oldUrls = this.backendUrls(name, old);
    const change = await this.rewriteRoutes(name);
    if (web && old.length > 0) await this.waitForRouters(change, oldUrls);
    await Promise.all(old.map((c) => this.ctx.cluster.remove(c, this.ctx.progress)));
    await this.ctx.etcd.delete().prefix(keys.unitEndpoints(this.stack, name));
  }

  /**
   * Where the stack's members are reached now: by name on one engine; on a grid, as the
   * containers run (minus `leaving`), each by its server's address and published port.
   */
  private async peers(leaving: ReadonlySet<string> = new Set()): Promise<Peers> {
    const units = [...this.units.values()];
    const { cluster, controlKey } = this.ctx;
    const key = controlKey !== undefined ? { controlKey } : {};
    if (cluster.addressing === 'alias') return { ...aliasPeers(this.spec, units, this.members), ...key };
    return { ...publishedPeers(this.spec, units, this.members, await cluster.list(this.stack), (c, port) => cluster.reach(c, port), leaving), ...key };
  }

  /**
   * Starts one container per member, numbered after every container the unit has had, and
   * waits until all are healthy. If one never is, all of them go and the error says why.
   */
  private async startHealthy(unit: DesiredUnit, members: number[], existing: RunningContainer[]): Promise<RunningContainer[]> {
    const { cluster, progress } = this.ctx;
    const specs = containerRequests(this.spec, unit, members, existing, await this.peers(), {
      release: this.ctx.release, publishWired: cluster.addressing === 'published',
    });
    const started: RunningContainer[] = [];
    try {
      // All at once: a deploy waits for its slowest container, not for the sum of them.
      const results = await cluster.start(specs, progress);
      for (const r of results) {
        if (r.status === 'fulfilled') {
          started.push(r.value);
          progress.info(`started ${r.value.name}${cluster.addressing === 'published' ? ` on ${r.value.server}` : ''}`);
        }
      }
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      await Promise.all(started.map((c) => {
        const at = unit.port !== undefined && cluster.addressing === 'published' ? cluster.reach(c, unit.port) : undefined;
        return waitHealthy(cluster.engine(c.server), c.id, {
          ...(unit.port !== undefined && { port: unit.port }),
          ...(unit.kind === 'web' && unit.health !== undefined && { path: unit.health }),
          ...(at && { at }),
          timeoutMs: this.ctx.healthTimeoutMs,
        });
      }));
      const now = await cluster.list(this.stack, unit.name);
      return started.map((c) => now.find((x) => x.id === c.id) ?? c);
    } catch (err) {
      progress.info(`removing the new containers (${started.map((c) => c.name).join(', ') || 'none started'}); what ran keeps running`);
      await Promise.all(started.map((c) => cluster.remove(c, progress, 2).catch(() => undefined)));
      throw err;
    }
  }

  /** Takes containers out of the routes, lets the router drain them, then stops them. */
  private async retire(name: string, old: RunningContainer[]): Promise<void> {
    if (old.length === 0) return;
    const gone = new Set(old.map((c) => c.id));
    const oldUrls = this.backendUrls(name, old);
    const change = await this.rewriteRoutes(name, gone);
    if (this.units.get(name)?.kind === 'web') await this.waitForRouters(change, oldUrls);
    await Promise.all(old.map((c) => this.ctx.cluster.remove(c, this.ctx.progress)));
    this.ctx.progress.info(`stopped ${old.map((c) => c.name).join(', ')}`);
  }

  /** The backend URLs (`http://host:port`) the routers know `containers` of a web unit by. */
  private backendUrls(name: string, containers: RunningContainer[]): string[] {
    const port = this.units.get(name)?.port;
    if (port === undefined) return [];
    return containers.flatMap((c) => {
      const at = this.ctx.cluster.reach(c, port);
      return at ? [`http://${at.host}:${at.port}`] : [];
    });
  }

  /**
   * Between a route change that retired `oldUrls` and stopping their containers: until every
   * reporting router applied the change and none still has requests in flight on them
   * (launcher/router-sync.ts), or the fixed `drainMs` when no router reports.
   */
  private async waitForRouters(change: RouteChange, oldUrls: string[]): Promise<void> {
    await waitForRouters({
      etcd: this.ctx.etcd, revision: change.revision, oldUrls: [...new Set([...oldUrls, ...change.removed])],
      syncMs: this.ctx.routerSyncMs ?? 10_000, drainMs: this.ctx.drainMs, info: (line) => this.ctx.progress.info(line),
    });
  }

  /**
   * Makes `/quarry/routes/<domain>/<container>` name exactly the running containers of a web
   * unit (minus `leaving`) under its domains: new backends first, stale ones after. Says at
   * which etcd revision (its last write; null when it wrote nothing) and which backend URLs the
   * deleted keys named.
   */
  private async rewriteRoutes(name: string, leaving = new Set<string>()): Promise<RouteChange> {
    const unit = this.units.get(name);
    const domains = this.domains.get(name) ?? [];
    const wanted = new Map<string, string>();
    if (unit?.kind === 'web' && unit.port !== undefined) {
      const running = (await this.ctx.cluster.list(this.stack, name)).filter((c) => c.state === 'running' && !leaving.has(c.id));
      for (const c of running) {
        const at = this.ctx.cluster.reach(c, unit.port);
        if (at) for (const domain of domains) wanted.set(keys.route(domain, c.name), `http://${at.host}:${at.port}`);
      }
    }
    let revision: number | null = null;
    const removed: string[] = [];
    for (const [key, value] of wanted) revision = Number((await this.ctx.etcd.put(key).value(value)).header.revision);
    const mine = `${this.stack}.${name}.`;
    const existing = await this.ctx.etcd.getAll().prefix(keys.routes).strings();
    for (const [key, value] of Object.entries(existing)) {
      const backend = key.slice(key.lastIndexOf('/') + 1);
      if (backend.startsWith(mine) && !wanted.has(key)) {
        revision = Number((await this.ctx.etcd.delete().key(key)).header.revision);
        removed.push(value.trim());
      }
    }
    return { revision, removed };
  }

  /**
   * `/quarry/stacks/<stack>/endpoints/<name>/<member>`: where each member of a unit is reached
   * (its host and ports as other containers reach them; on a grid its server too).
   */
  private async writeEndpoints(name: string, leaving: ReadonlySet<string> = new Set()): Promise<void> {
    const unit = this.units.get(name);
    if (!unit) return;
    const { cluster } = this.ctx;
    const ports: Record<string, number> = unit.kind === 'service'
      ? (unit.port !== undefined ? { [unit.name]: unit.port } : {})
      : isWired(this.spec, name) ? inPortNumbers(this.spec, name) : (unit.port !== undefined ? { http: unit.port } : {});
    const running = (await cluster.list(this.stack, name)).filter((c) => c.state === 'running' && !leaving.has(c.id));
    const wanted = new Map<string, EndpointRecord>();
    for (const c of running.sort((a, b) => a.n - b.n)) {
      const reached = Object.entries(ports).map(([port, n]) => [port, cluster.reach(c, n)] as const);
      // On one engine, by the member's stable name on the stack's network (what the wiring
      // names; its address there changes when it restarts); on a grid, its server's address.
      const host = cluster.addressing === 'alias' ? (unit.kind === 'service' ? unit.name : memberAlias(name, c.member ?? 0)) : cluster.host(c);
      if (!host || reached.some(([, at]) => !at)) continue;
      wanted.set(keys.endpoint(this.stack, name, c.member ?? 0), {
        container: c.name, host, ports: Object.fromEntries(reached.map(([port, at]) => [port, at!.port])),
        ...(cluster.addressing === 'published' && { server: c.server }),
      });
    }
    for (const [key, record] of wanted) await this.ctx.lease.put(key).value(JSON.stringify(record));
    for (const key of await this.ctx.etcd.getAll().prefix(keys.unitEndpoints(this.stack, name)).keys()) {
      if (!wanted.has(key)) await this.ctx.etcd.delete().key(key);
    }
  }

  /**
   * Tells each member of every unit with an out port to `name` the members of `name` as they
   * are now (minus `leaving`), over its control socket. On one engine a deploy keeps the
   * members' names, so only a change in their number needs it; on a grid every new container
   * has a new address, so every change of the unit does.
   */
  private async rewireProducersOf(name: string, leaving: ReadonlySet<string> = new Set()): Promise<void> {
    const links = this.spec.connections.filter((c) => c.to.name === name);
    if (links.length === 0) return;
    const peers = await this.peers(leaving);
    for (const link of links) {
      const producers = await this.ctx.cluster.list(this.stack, link.from.name);
      for (const c of producers) {
        if (c.state !== 'running' || leaving.has(c.id)) continue;
        const control = this.ctx.cluster.reach(c, CONTROL_PORT);
        if (!control) continue;
        const port = memberWiring(this.spec, link.from.name, c.member ?? 0, peers).ports[link.from.port];
        if (port?.dir !== 'out') continue;
        const key = this.ctx.controlKey;
        if (key === undefined) {
          this.ctx.progress.info(`no control key for ${this.stack}: ${c.name} gets its new peers when it restarts`);
          continue;
        }
        try {
          await sendPeers(`tcp://${control.host}:${control.port}`, link.from.port, port.targets, { key });
        } catch (err) {
          this.ctx.progress.info(`could not tell ${c.name} its new peers (${(err as Error).message}); it will get them when it restarts`);
        }
      }
    }
  }

  /** `/quarry/stacks/<stack>/env/`: the stack's env with services' addresses, exactly. */
  private async writeEnv(): Promise<void> {
    const env = { ...this.spec.env, ...(await this.peers()).services };
    const prefix = keys.env(this.stack);
    for (const [key, value] of Object.entries(env)) await this.ctx.etcd.put(prefix + key).value(value);
    for (const key of await this.ctx.etcd.getAll().prefix(prefix).keys()) {
      if (!(key.slice(prefix.length) in env)) await this.ctx.etcd.delete().key(key);
    }
  }

  /**
   * Makes a web unit's routes name where its running containers are now: after a restart in
   * small mode, where a container's address on the stack's network is docker's to give again
   * (it gives the same one back when it is free, which it nearly always is).
   */
  async refreshRoutes(name: string): Promise<void> {
    await this.rewriteRoutes(name);
  }

  /**
   * Moves the stack's containers off `server` (a drain): for each unit with containers there,
   * containers for the same members start elsewhere (where the grid places them) and are
   * healthy before the old ones leave the routes and the producers' peers, drain and stop. A
   * service that moves has a new address: every unit that reads it starts again with it (as
   * after ENSURE), and the old service stops only then.
   */
  async moveOff(server: string): Promise<void> {
    const { progress, cluster } = this.ctx;
    const before = (await this.peers()).services;
    const all = await cluster.list(this.stack);
    const there = all.filter((c) => c.server === server);
    const services: RunningContainer[] = [];
    /** Units whose every container moved after the services did: they booted with the services' new addresses. */
    const fresh = new Set<string>();
    const order = [...this.units.values()].sort((a, b) => Number(a.kind !== 'service') - Number(b.kind !== 'service'));
    for (const unit of order) {
      const old = there.filter((c) => c.unit === unit.name);
      if (old.length === 0) continue;
      const want = this.after.units.find((u) => u.name === unit.name);
      const members = [...new Set(old.map((c) => c.member ?? 0))].filter((m) => m < (want?.scale ?? 0)).sort((a, b) => a - b);
      progress.step(`Moving ${unit.name} off ${server}: ${old.map((c) => c.name).join(', ')}`);
      if (members.length > 0) {
        const fresh = await this.startHealthy(unit, members, all.filter((c) => c.unit === unit.name));
        progress.info(`${fresh.map((c) => `${c.name} on ${c.server}`).join(', ')} healthy`);
      }
      if (unit.kind === 'service') {
        services.push(...old);
        await this.writeEndpoints(unit.name);
        continue;
      }
      if (cluster.addressing === 'published') await this.rewireProducersOf(unit.name, new Set(old.map((c) => c.id)));
      await this.retire(unit.name, old);
      await this.writeEndpoints(unit.name);
      if (all.filter((c) => c.unit === unit.name).every((c) => c.server === server)) fresh.add(unit.name);
    }
    await this.followMovedServices(before, [], fresh);
    for (const name of new Set(services.map((c) => c.unit))) await this.retire(name, services.filter((c) => c.unit === name));
    // Containers there of units the release no longer has.
    for (const c of there.filter((x) => !this.units.has(x.unit))) await cluster.remove(c, progress, 2);
    await this.writeEnv();
  }

  /**
   * Brings the stack to `after` whatever state its containers are in: used when HQ restarts
   * and finds a task it did not finish. Containers of the right definition are kept (one per
   * member), missing members are started, everything else goes; routes and endpoints follow.
   */
  async converge(): Promise<void> {
    const { cluster, progress } = this.ctx;
    // The services' addresses as the stack's containers were told them (the env in etcd): a
    // service started anew elsewhere (its server lost) must be followed by those that read it.
    const told = await this.toldEnv();
    const all = (await this.ctx.cluster.list(this.stack)).filter((c) => c.state !== 'unreachable');
    const fresh = new Set<string>();
    for (const c of all) {
      if (!this.units.has(c.unit) || !this.after.units.some((u) => u.name === c.unit)) {
        progress.info(`removing ${c.name}: not part of the release`);
        await cluster.remove(c, progress, 2);
      }
    }
    // In launch order (services first: the others boot with their addresses).
    for (const want of this.launchOrder()) {
      const unit = this.units.get(want.name);
      if (!unit) continue;
      const mine = all.filter((c) => c.unit === unit.name);
      const keep = new Map<number, RunningContainer>();
      for (const c of mine.sort((a, b) => a.n - b.n)) {
        const member = c.member ?? 0;
        const fits = c.state === 'running' && (unit.kind === 'service' || c.digest === unit.digest);
        if (fits && member < want.scale && !keep.has(member)) keep.set(member, c);
      }
      const missing = range(0, want.scale).filter((m) => !keep.has(m));
      if (keep.size === 0) fresh.add(unit.name);
      if (missing.length > 0) {
        progress.info(`starting ${unit.name} member${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`);
        await this.startHealthy(unit, missing, mine);
      }
      this.domains.set(unit.name, [...want.domains]);
      const extra = mine.filter((c) => ![...keep.values()].includes(c));
      await this.retire(unit.name, extra);
      await this.rewriteRoutes(unit.name);
      await this.writeEndpoints(unit.name);
    }
    if (this.after.units.some((u) => this.units.get(u.name)?.kind === 'service')) await this.followMovedServices(told, [], fresh);
    await this.writeEnv();
  }

  /** The release's units in the order the stack launches them (desiredUnits: services, then elements consumers first, then nodes). */
  private launchOrder(): CurrentState['units'] {
    const order = [...this.units.keys()];
    return [...this.after.units].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  }

  /** The stack's env as last written to etcd (the services' addresses its containers booted with). */
  private async toldEnv(): Promise<Record<string, string>> {
    const prefix = keys.env(this.stack);
    const found = await this.ctx.etcd.getAll().prefix(prefix).strings().catch(() => ({} as Record<string, string>));
    return Object.fromEntries(Object.entries(found).map(([k, v]) => [k.slice(prefix.length), v]));
  }
}

/** What a rewrite of a unit's routes did: the etcd revision of its last write (null: none), the URLs its deleted keys named. */
interface RouteChange {
  revision: number | null;
  removed: string[];
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

