import { SILENT_PROGRESS } from '../../launcher/index.js';
import type { ControlParts } from './context.js';
import { convergeTo, undo } from './undo.js';

/**
 * Tasks a dead HQ left running: each is finished if its release was recorded, and undone if
 * not (the stack converged to the last recorded release, or removed after a failed first
 * push: `undo`, as a task that fails part way is). The task then ends `done`, `undone`, or
 * `failed` if that too went wrong.
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
      if (done) await convergeTo(parts, stack, store.release(stack, version), progress);
      else await undo(parts, stack, store.latest(stack), progress);
      task.end(done ? 'done' : 'undone');
    } catch (err) {
      progress.error(`could not recover: ${(err as Error).message}`);
      ctx.log(`task ${task.record.id}: could not recover: ${(err as Error).stack ?? String(err)}`);
      task.end('failed');
    }
  }
}
