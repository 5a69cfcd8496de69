import { LocalCluster } from '../../launcher/index.js';
import type { ControlHandle } from '../control.js';
import { openGrid } from '../grid/index.js';
import { StackLocks } from '../stack-lock.js';
import type { ControlContext, ControlParts } from './context.js';
import { stackLogs } from './logs.js';
import { psRows } from './ps.js';
import { recover } from './recover.js';
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
  };
  const { store } = parts;

  const control: ControlHandle = {
    onRelease: (stack, _srcDir, spec, progress, push) => pushRelease(parts, stack, spec, progress, push),
    stacks: async () => store.stacks(),
    ps: (stack) => psRows(parts, stack),
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
    close: async () => {
      await lease.revoke().catch(() => undefined);
      await cluster.close();
    },
  };

  await recover(parts);
  return control;
}
