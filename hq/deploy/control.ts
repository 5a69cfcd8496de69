import { join } from 'node:path';
import {
  LocalCluster, LOCAL_SERVER, SILENT_PROGRESS, SmallModeError, StackExecutor, keys, startCaretaker, startPeerRelay, type Caretaker, type PeerRelay,
  startMetricsRelay, type MetricsRelay,
} from '../../launcher/index.js';
import type { ControlHandle } from '../control.js';
import { openGrid } from '../grid/index.js';
import { loadOrCreateDigestKey } from '../keys/index.js';
import { StackLocks } from '../stack-lock.js';
import { executorContext, type ControlContext, type ControlParts } from './context.js';
import { withEnv } from '../../plan/index.js';
import { stackLogs } from './logs.js';
import { psRows } from './ps.js';
import { topView } from './top.js';
import { recover } from './recover.js';
import { startHealer } from './heal.js';
import { startImageCollector } from './collect.js';
import { startAutoscaler } from './autoscale.js';
import { releaseInfo } from './release-info.js';
import { envRequest, pushRelease, rollbackRequest, scaleRequest } from './requests.js';
import { StackStore } from './stack-store.js';
import { TaskStore } from './task-store.js';

export type { ControlContext } from './context.js';

export type { ControlHandle };

/**
 * HQ's running of stacks on the local docker engine (small mode): pushes, scale, env and
 * rollback each become a task that carries out a plan and records a release. At start, a task
 * left running by a dead HQ is finished (its release was recorded) or undone (it was not).
 */
export async function startControl(ctx: ControlContext): Promise<ControlHandle> {
  const grid = ctx.config?.grid;
  const cluster = ctx.cluster ?? (grid ? await openGrid(grid, ctx) : new LocalCluster(ctx.docker));
  const lease = ctx.etcd.lease(30);
  lease.on('lost', (err) => ctx.log(`etcd lease lost (${err.message}); endpoints are written again on the next change`));
  const parts: ControlParts = {
    ctx, store: new StackStore(ctx.home), tasks: new TaskStore(ctx.home), locks: new StackLocks(), cluster, lease,
    digestKey: loadOrCreateDigestKey(ctx.home),
  };
  const { store } = parts;

  const control: ControlHandle = {
    onRelease: (stack, _srcDir, spec, progress, push) => pushRelease(parts, stack, spec, progress, push),
    stacks: async () => store.stacks(),
    ps: (stack) => psRows(parts, stack),
    top: (stack) => topView(parts, stack),
    scale: (stack, changes, progress) => scaleRequest(parts, stack, changes, progress),
    logs: (stack, name, options, write, signal) => stackLogs(parts, stack, name, options, write, signal),
    releases: async (stack) => {
      store.check(stack);
      return store.releases(stack).map((r) => releaseInfo(r, ctx.config?.routerPort)).reverse();
    },
    rollback: (stack, version, progress) => rollbackRequest(parts, stack, version, progress),
    env: async (stack) => {
      store.check(stack);
      return store.latest(stack)?.env ?? store.env(stack);
    },
    setEnv: (stack, set, unset, progress) => envRequest(parts, stack, set, unset, progress),
    servers: async () => cluster.servers(),
    grid: async (stack) => {
      if (stack !== undefined) store.check(stack);
      return cluster.grid(stack);
    },
    addServer: async (size, progress) => cluster.addServer(size, progress),
    removeServer: async (id, progress) => cluster.removeServer(id, progress),
    drainServer: async (id, remove, progress) => {
      if (!healer) throw new SmallModeError('this HQ runs in small mode: its one server has nowhere to move containers to; see docs/hq.md');
      return healer.drain(id, remove, progress);
    },
    undrainServer: async (id, progress) => {
      if (!healer) throw new SmallModeError('this HQ runs in small mode: its one server is never drained');
      return healer.undrain(id, progress);
    },
    close: async () => {
      await autoscaler?.stop();
      await collector.stop();
      await healer?.stop();
      await caretaker?.stop();
      await relay?.stop();
      await metrics?.stop();
      await lease.revoke().catch(() => undefined);
      await cluster.close();
    },
  };

  // Small mode: HQ is the caretaker of its own engine's containers (on a grid, each server's agent is).
  const caretaker: Caretaker | undefined = cluster.addressing === 'alias' ? smallModeCaretaker(parts) : undefined;
  const relay: PeerRelay | undefined = cluster.addressing === 'alias' ? startPeerRelay({ etcd: ctx.etcd, docker: ctx.docker, log: ctx.log }) : undefined;
  // Each element instance's figures each second, under HQ's lease (its own stacks, not `quarry run`'s).
  const metrics: MetricsRelay | undefined = cluster.addressing === 'alias'
    ? startMetricsRelay({ etcd: ctx.etcd, docker: ctx.docker, server: LOCAL_SERVER, lease, cares: (stack) => store.exists(stack), log: ctx.log })
    : undefined;
  await recover(parts);
  // After recovery: the loop then starts from releases that are whole.
  const healer = startHealer(parts, ctx.healIntervalMs !== undefined ? { intervalMs: ctx.healIntervalMs } : {});
  // Old images go after tasks, and once at start (what an earlier HQ left).
  const collector = startImageCollector(parts);
  parts.collector = collector;
  collector.request();
  // Load shards sized by load (issue 17): its releases say "autoscale".
  const autoscaler = ctx.autoscale === false ? undefined : startAutoscaler(parts, ctx.autoscale ?? {});
  return control;
}

/**
 * The caretaker of the local engine in small mode: restarts HQ's stacks' crashed containers by
 * their restart policy (not those of `quarry run` on the same engine), its records in etcd under
 * HQ's lease (`quarry ps` shows them), its history in `<home>/caretaker.json`.
 */
function smallModeCaretaker(parts: ControlParts): Caretaker {
  const { ctx, store, lease } = parts;
  const put = (key: string, value: string) => lease.put(key).value(value).catch(() => undefined);
  return startCaretaker({
    docker: ctx.docker, server: LOCAL_SERVER, stateFile: join(ctx.home.root, 'caretaker.json'),
    cares: (stack) => store.stacks().includes(stack),
    report: (record) => {
      void put(keys.containerCare(record.stack, record.container), JSON.stringify(record));
      if (record.state === 'running' && record.restarts > 0) void followRestart(parts, record.stack, record.unit);
    },
    forget: (stack, container) => void ctx.etcd.delete().key(keys.containerCare(stack, container)).catch(() => undefined),
    log: (line) => ctx.log(line),
  });
}

/** After a restart in small mode: the unit's routes made to name its containers' addresses now, under the stack's lock. */
async function followRestart(parts: ControlParts, stack: string, unit: string): Promise<void> {
  const unlock = await parts.locks.acquire(stack, { holder: `the check of ${unit}'s routes after a restart` });
  try {
    const last = parts.store.latest(stack);
    if (!last || !last.current.units.some((u) => u.name === unit && u.domains.length > 0)) return;
    const spec = withEnv(last.spec, last.env);
    await new StackExecutor({ ...executorContext(parts, SILENT_PROGRESS, last.version), controlKey: parts.store.controlKey(stack) }, spec, last.current, last.current).refreshRoutes(unit);
  } catch (err) {
    parts.ctx.log(`${stack}: could not check ${unit}'s routes after a restart (${(err as Error).message})`);
  } finally {
    unlock();
  }
}
