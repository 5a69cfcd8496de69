import type Docker from 'dockerode';
import type { Etcd3, Lease } from 'etcd3';
import { serviceEnvNames, type StackSpec } from '../../compiler/index.js';
import { QuarryError } from '../../errors/index.js';
import { LocalCluster, probe, SILENT_PROGRESS, StackExecutor, keys, type Cluster, type PlacedContainer, type Progress } from '../../launcher/index.js';
import { applyPlan, desiredUnits, diffPlan, type CurrentState, type Instruction } from '../../plan/index.js';
import { type HqControl, type LogLine, type LogOptions, type PsRow, type ReleaseInfo, type ReleaseReason } from '../control.js';
import { BadRequestError } from '../errors.js';
import type { HqConfig } from '../config.js';
import { openGrid } from '../grid/open-grid.js';
import type { HomeLayout } from '../../home/index.js';
import type { OnRelease, PushInfo } from '../push/release.js';
import { StackLocks } from '../stack-lock.js';
import { containerLogs } from './logs.js';
import type { ReleaseRecord } from './records.js';
import { StackStore } from './stack-store.js';
import { TaskStore } from './task-store.js';

/** What the part of HQ that runs stacks needs (a subset of the daemon's context). */
export interface ControlContext {
  home: HomeLayout;
  etcd: Etcd3;
  docker: Docker;
  /** etcd as a grid's servers reach it: HQ installs an agent on each server that joins. */
  agentEtcd?: string[];
  /** Where containers run; default: the local engine (`docker`) as the one server. */
  cluster?: Cluster;
  log: (line: string) => void;
  config?: { routerPort?: number; grid?: HqConfig['grid'] };
  /** How long new containers get to become healthy; default 60 s. */
  healthTimeoutMs?: number;
  /** How long the router gets to stop using a container before it stops; default 1.5 s. */
  drainMs?: number;
}

export interface ControlHandle extends HqControl {
  onRelease: OnRelease;
  close(): Promise<void>;
}

const RESERVED_ENV = /^(QUARRY_.*|PORT)$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** How a task gets from the last release to its own: the stack, env and plan it releases. */
interface Change {
  spec: StackSpec;
  env: Record<string, string>;
  commit: string;
  plan: Instruction[];
  notices: string[];
  /** Scales the release must end with, when the plan alone would not say (rollback). */
  scales?: Record<string, number>;
}

/**
 * HQ's running of stacks on the local docker engine (small mode): pushes, scale, env and
 * rollback each become a task that carries out a plan and records a release. At start, a task
 * left running by a dead HQ is finished (its release was recorded) or undone (it was not).
 */
export async function startControl(ctx: ControlContext): Promise<ControlHandle> {
  const store = new StackStore(ctx.home);
  const tasks = new TaskStore(ctx.home);
  const locks = new StackLocks();
  const grid = ctx.config?.grid;
  const cluster = ctx.cluster ?? (grid ? await openGrid(grid, ctx) : new LocalCluster(ctx.docker));
  const lease: Lease = ctx.etcd.lease(30);
  lease.on('lost', (err) => ctx.log(`etcd lease lost (${err.message}); endpoints are written again on the next change`));
  const routerPort = ctx.config?.routerPort;
  const urls = (spec: StackSpec) => spec.nodes.filter((n) => n.type === 'web').flatMap((n) => n.domains)
    .map((d) => `http://${d.replace(/^\*\./, 'www.')}${routerPort !== undefined && routerPort !== 80 ? `:${routerPort}` : ''}/`);

  const withEnv = (spec: StackSpec, env: Record<string, string>): StackSpec => ({ ...spec, env: { ...spec.env, ...env } });
  const executorContext = (progress: Progress, version: number) => ({
    cluster, etcd: ctx.etcd, lease, progress, release: `v${version}`,
    drainMs: ctx.drainMs ?? 1500, healthTimeoutMs: ctx.healthTimeoutMs ?? 60_000,
  });

  const info = (r: ReleaseRecord): ReleaseInfo => ({
    stack: r.stack, version: r.version, at: r.at, reason: r.reason, description: r.description, commit: r.commit,
    images: Object.fromEntries(desiredUnits(r.spec).map((u) => [u.name, u.image])),
    scale: Object.fromEntries(r.current.units.map((u) => [u.name, u.scale])),
    envKeys: Object.keys(r.env).sort(),
    urls: urls(r.spec),
  });

  /** One change of a stack, as a task: plan, carry out, record. Changes of a stack run one at a time. */
  async function runTask(stack: string, reason: ReleaseReason, description: string, to: Progress,
    make: (last: ReleaseRecord | undefined) => Change): Promise<ReleaseInfo> {
    const unlock = await locks.acquire(stack, () => to.info('another change of this stack is running; waiting for it'));
    try {
      const last = store.latest(stack);
      const change = make(last);
      const version = store.nextVersion(stack, tasks.versionsTaken(stack));
      const task = tasks.begin({ stack, reason, description, version, ...(last && { previous: last.version }) });
      const progress = task.progress(to);
      try {
        const spec = withEnv(change.spec, change.env);
        const plan = change.scales ? fixScales(change.plan, last?.current, change.scales, spec.name) : change.plan;
        const current = applyPlan(spec, last?.current, plan);
        progress.step(`Release v${version}: ${description}`);
        for (const notice of change.notices) progress.info(`note: ${notice}`);
        if (plan.length === 0) progress.info('nothing to start or stop');
        await new StackExecutor(executorContext(progress, version), spec, last?.current, current).run(plan);
        const record: ReleaseRecord = {
          stack, version, at: new Date().toISOString(), reason, description, commit: change.commit,
          spec: change.spec, env: change.env, current, plan,
        };
        store.saveRelease(record);
        if (reason === 'env') store.writeEnv(stack, change.env);
        task.end('done');
        const released = info(record);
        progress.step(`${stack} v${version} is live${released.urls.length > 0 ? `: ${released.urls.join(' ')}` : ''}`);
        return released;
      } catch (err) {
        progress.error(err instanceof QuarryError ? err.message : `internal error: ${(err as Error)?.stack ?? String(err)}`);
        progress.error(`v${version} failed; what ran keeps running`);
        task.end('failed');
        throw err;
      }
    } finally {
      unlock();
    }
  }

  const lastOf = (stack: string): ReleaseRecord => {
    store.check(stack);
    const last = store.latest(stack);
    if (!last) throw new BadRequestError(`stack '${stack}' has no release yet; push it first`);
    return last;
  };

  const onRelease: OnRelease = async (stack, _srcDir, spec, progress, push: PushInfo) => {
    await runTask(stack, 'push', `push of ${push.commit.slice(0, 7)}`, progress, (last) => {
      const env = last?.env ?? store.env(stack);
      const plan = diffPlan(withEnv(spec, env), last?.current, { replace: push.replace });
      return { spec, env, commit: push.commit, plan: plan.instructions, notices: plan.notices };
    });
  };

  const control: ControlHandle = {
    onRelease,

    async stacks() {
      return store.stacks();
    },

    async ps(stack) {
      if (stack !== undefined) store.check(stack);
      // Only this HQ's stacks: the engine may also run `quarry run` stacks or other things.
      const mine = new Set(stack !== undefined ? [stack] : store.stacks());
      const containers = (await cluster.list(stack)).filter((c) => mine.has(c.stack));
      const specs = new Map<string, StackSpec | undefined>();
      const rows: PsRow[] = [];
      for (const c of containers) {
        if (!specs.has(c.stack)) specs.set(c.stack, store.latest(c.stack)?.spec);
        rows.push(await psRow(cluster, c, specs.get(c.stack)));
      }
      return rows;
    },

    async scale(stack, changes, progress) {
      const last = lastOf(stack);
      const units = new Map(desiredUnits(withEnv(last.spec, last.env)).map((u) => [u.name, u]));
      const faults: string[] = [];
      for (const [name, n] of Object.entries(changes)) {
        const unit = units.get(name);
        if (!unit) faults.push(`no node or element '${name}' in ${stack} (it has ${[...units.keys()].join(', ')})`);
        else if (unit.kind === 'service') faults.push(`'${name}' is a service: it runs one container`);
        else if (!Number.isInteger(n) || n < 0 || n > 100) faults.push(`${name}=${n}: a whole number from 0 to 100 is required`);
        else if (unit.shard && (n < unit.shard.min || n > unit.shard.max)) faults.push(`${name}=${n}: its shard runs ${unit.shard.min} to ${unit.shard.max} members`);
      }
      if (Object.keys(changes).length === 0) faults.push('say what to scale: NAME=N');
      if (faults.length > 0) throw new BadRequestError(faults.join('; '));
      const description = `scale ${Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(' ')}`;
      return runTask(stack, 'scale', description, progress, (now) => {
        const base = now ?? last;
        const plan: Instruction[] = [];
        for (const [name, to] of Object.entries(changes)) {
          const unit = units.get(name)!;
          const from = base.current.units.find((u) => u.name === name)?.scale ?? unit.scale;
          if (from !== to) plan.push({ op: 'SCALE', stack, ...(unit.kind === 'element' ? { element: name } : { node: name }), from, to });
        }
        return { spec: base.spec, env: base.env, commit: base.commit, plan, notices: [] };
      });
    },

    async logs(stack, name, options: LogOptions, write: (line: LogLine) => void, signal: AbortSignal) {
      store.check(stack);
      const containers = (await cluster.list(stack, name)).filter((c) => c.unit !== '');
      if (name !== undefined && containers.length === 0) {
        const spec = store.latest(stack)?.spec;
        const known = spec && (spec.nodes.some((n) => n.name === name) || spec.elements.some((e) => e.name === name));
        if (!known) throw new BadRequestError(`no node or element '${name}' in ${stack}`);
      }
      await Promise.all(containers.map((c) => containerLogs(cluster.engine(c.server), c.id, c.name, options, write, signal)));
    },

    async releases(stack) {
      store.check(stack);
      return store.releases(stack).map(info).reverse();
    },

    async rollback(stack, version, progress) {
      lastOf(stack);
      const target = store.release(stack, version);
      return runTask(stack, 'rollback', `rollback to v${version}`, progress, (last) => {
        const plan = diffPlan(withEnv(target.spec, target.env), last?.current);
        return {
          spec: target.spec, env: target.env, commit: target.commit, plan: plan.instructions, notices: [],
          scales: Object.fromEntries(target.current.units.map((u) => [u.name, u.scale])),
        };
      });
    },

    async env(stack) {
      store.check(stack);
      return store.latest(stack)?.env ?? store.env(stack);
    },

    async setEnv(stack, set, unset, progress) {
      const last = lastOf(stack);
      const reserved = new Set(last.spec.nodes.filter((n) => n.type === 'service').flatMap((n) => Object.values(serviceEnvNames(n.name))));
      const faults: string[] = [];
      for (const key of [...Object.keys(set), ...unset]) {
        if (!ENV_KEY.test(key)) faults.push(`'${key}' is not an env name (letters, digits and _, not starting with a digit)`);
        else if (RESERVED_ENV.test(key) || reserved.has(key)) faults.push(`${key} is set by quarry itself`);
      }
      for (const [key, value] of Object.entries(set)) if (typeof value !== 'string') faults.push(`${key}: the value must be a string`);
      if (Object.keys(set).length + unset.length === 0) faults.push('say what to change: set KEY=VALUE or unset KEY');
      if (faults.length > 0) throw new BadRequestError(faults.join('; '));
      const parts = [...Object.keys(set).map((k) => `set ${k}`), ...unset.map((k) => `unset ${k}`)];
      return runTask(stack, 'env', `env ${parts.join(', ')}`, progress, (now) => {
        const base = now ?? last;
        const env = { ...base.env, ...set };
        for (const key of unset) delete env[key];
        const plan = diffPlan(withEnv(base.spec, env), base.current);
        return { spec: base.spec, env, commit: base.commit, plan: plan.instructions, notices: plan.notices };
      });
    },

    async servers() {
      return cluster.servers();
    },

    async grid(stack) {
      if (stack !== undefined) store.check(stack);
      return cluster.grid(stack);
    },

    async addServer(size, progress) {
      return cluster.addServer(size, progress);
    },

    async removeServer(id, progress) {
      return cluster.removeServer(id, progress);
    },

    async close() {
      await lease.revoke().catch(() => undefined);
      await cluster.close();
    },
  };

  /** A task a dead HQ left running: finished if its release was recorded, undone if not. */
  async function recover(): Promise<void> {
    for (const task of tasks.running()) {
      const { stack, version } = task.record;
      const progress = task.progress(SILENT_PROGRESS);
      const done = store.versions(stack).includes(version);
      progress.step(`HQ restarted during this task: ${done ? `finishing v${version}` : 'undoing it'}`);
      ctx.log(`recovering task ${task.record.id} (${stack}: ${task.record.description}): ${done ? 'finishing it' : 'undoing it'}`);
      try {
        const target = done ? store.release(stack, version) : store.latest(stack);
        if (target) {
          const spec = withEnv(target.spec, target.env);
          await new StackExecutor(executorContext(progress, target.version), spec, undefined, target.current).converge();
        } else {
          await removeStack(stack, progress);
        }
        task.end(done ? 'done' : 'undone');
      } catch (err) {
        progress.error(`could not recover: ${(err as Error).message}`);
        ctx.log(`task ${task.record.id}: could not recover: ${(err as Error).stack ?? String(err)}`);
        task.end('failed');
      }
    }
  }

  /** Undoes a first push: no release to go back to, so nothing of the stack may run. */
  async function removeStack(stack: string, progress: Progress): Promise<void> {
    for (const c of await cluster.list(stack)) {
      progress.info(`removing ${c.name}`);
      await cluster.remove(c, progress, 2);
    }
    for (const key of await ctx.etcd.getAll().prefix(keys.routes).keys()) {
      if (key.slice(key.lastIndexOf('/') + 1).startsWith(`${stack}.`)) await ctx.etcd.delete().key(key);
    }
    await ctx.etcd.delete().prefix(keys.endpoints(stack));
  }

  await recover();
  return control;
}

/**
 * A plan that ends with the given scales: a DEPLOY takes the scale, a SCALE is retargeted, and
 * a unit the plan leaves alone gets a SCALE when its count differs (rollback restores scale).
 */
function fixScales(plan: Instruction[], current: CurrentState | undefined, scales: Record<string, number>, stack: string): Instruction[] {
  const out = plan.map((s) => ({ ...s }));
  const touched = new Set<string>();
  for (const step of out) {
    if (step.op !== 'DEPLOY' && step.op !== 'SCALE') continue;
    const name = (step.node ?? step.element)!;
    const want = scales[name];
    if (want === undefined) continue;
    touched.add(name);
    if (step.op === 'DEPLOY') step.scale = want;
    else step.to = want;
  }
  const extra: Instruction[] = [];
  for (const unit of current?.units ?? []) {
    const want = scales[unit.name];
    if (unit.kind === 'service' || want === undefined || touched.has(unit.name) || want === unit.scale) continue;
    if (out.some((s) => s.op === 'KILL' && (s.node ?? s.element) === unit.name)) continue;
    extra.push({ op: 'SCALE', stack, ...(unit.kind === 'element' ? { element: unit.name } : { node: unit.name }), from: unit.scale, to: want });
  }
  const kills = out.filter((s) => s.op === 'KILL');
  return [...out.filter((s) => s.op !== 'KILL' && !(s.op === 'SCALE' && s.from === s.to)), ...extra, ...kills];
}

async function psRow(cluster: Cluster, c: PlacedContainer, spec: StackSpec | undefined): Promise<PsRow> {
  const node = spec?.nodes.find((n) => n.name === c.unit);
  const at = node?.port !== undefined ? cluster.reach(c, node.port) : undefined;
  const published = cluster.addressing === 'published';
  let health = '-';
  if (c.state === 'running' && at && node?.port !== undefined) {
    health = (await probe(at.host, at.port, node.type === 'web' ? node.health : undefined, published ? 300 : 0)) ? 'healthy' : 'unhealthy';
  }
  const address = published ? (at && `${at.host}:${at.port}`) : (c.hostPort !== undefined ? `127.0.0.1:${c.hostPort}` : undefined);
  return {
    stack: c.stack, name: c.unit, kind: c.kind, container: c.name, server: c.server, state: c.state, health,
    release: c.release ?? '-', ...(address !== undefined && { address }),
  };
}
