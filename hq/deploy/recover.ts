import { SILENT_PROGRESS, StackExecutor, keys, type Progress } from '../../launcher/index.js';
import { withEnv } from '../../plan/index.js';
import { executorContext, type ControlParts } from './context.js';

/**
 * Tasks a dead HQ left running: each is finished if its release was recorded, and undone if
 * not (the stack converged to the last recorded release, or removed after a failed first
 * push). The task then ends `done`, `undone`, or `failed` if that too went wrong.
 */
export async function recover(parts: ControlParts): Promise<void> {
  const { ctx, store, tasks } = parts;
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
        await new StackExecutor({ ...executorContext(parts, progress, target.version), controlKey: store.controlKey(stack) }, spec, undefined, target.current).converge();
      } else {
        await removeStack(parts, stack, progress);
      }
      task.end(done ? 'done' : 'undone');
    } catch (err) {
      progress.error(`could not recover: ${(err as Error).message}`);
      ctx.log(`task ${task.record.id}: could not recover: ${(err as Error).stack ?? String(err)}`);
      task.end('failed');
    }
  }
}

/** Undoes a first push: no release to go back to, so nothing of the stack may run, nor be routed or reached. */
async function removeStack(parts: ControlParts, stack: string, progress: Progress): Promise<void> {
  const { cluster, ctx } = parts;
  for (const c of await cluster.list(stack)) {
    progress.info(`removing ${c.name}`);
    await cluster.remove(c, progress, 2);
  }
  for (const key of await ctx.etcd.getAll().prefix(keys.routes).keys()) {
    if (key.slice(key.lastIndexOf('/') + 1).startsWith(`${stack}.`)) await ctx.etcd.delete().key(key);
  }
  await ctx.etcd.delete().prefix(keys.endpoints(stack));
}
