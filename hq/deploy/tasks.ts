import type { StackSpec } from '../../compiler/index.js';
import { QuarryError } from '../../errors/index.js';
import { StackExecutor, type Progress } from '../../launcher/index.js';
import { applyPlan, withEnv, withScales, type Instruction } from '../../plan/index.js';
import type { ReleaseInfo, ReleaseReason } from '../control.js';
import { executorContext, type ControlParts } from './context.js';
import type { ReleaseRecord } from './records.js';
import { releaseInfo } from './release-info.js';
import { undo, unitsOf } from './undo.js';

/** How a task gets from the last release to its own: the stack, env and plan it releases. */
export interface Change {
  spec: StackSpec;
  env: Record<string, string>;
  commit: string;
  plan: Instruction[];
  notices: string[];
  /** Scales the release must end with, when the plan alone would not say (rollback). */
  scales?: Record<string, number>;
}

/**
 * One change of a stack, as a task: plan (`make`, given the last release once the stack's
 * lock is held), carry out, record the release. Changes of a stack run one at a time. The
 * release is the commit point: a task that fails records none, and is undone (`undo`): a
 * plan that failed part way leaves nothing of it running, the stack is back on its last
 * release (or, after a failed first push, removed).
 */
export async function runTask(parts: ControlParts, stack: string, reason: ReleaseReason, description: string, to: Progress,
  make: (last: ReleaseRecord | undefined) => Change): Promise<ReleaseInfo> {
  const { store, tasks, locks } = parts;
  const unlock = await locks.acquire(stack, {
    holder: `${description} (${reason})`,
    waiting: (holder) => to.info(`another change of this stack is running (${holder.description}); waiting for it`),
  });
  try {
    const last = store.latest(stack);
    const change = make(last);
    const version = store.nextVersion(stack, tasks.versionsTaken(stack));
    const task = tasks.begin({ stack, reason, description, version, ...(last && { previous: last.version }) });
    const progress = task.progress(to);
    let plan = change.plan;
    let recorded = false;
    try {
      const spec = withEnv(change.spec, change.env);
      plan = change.scales ? withScales(change.plan, last?.current, change.scales, spec.name) : change.plan;
      const current = applyPlan(spec, last?.current, plan);
      progress.step(`Release v${version}: ${description}`);
      for (const notice of change.notices) progress.info(`note: ${notice}`);
      if (plan.length === 0) progress.info('nothing to start or stop');
      await new StackExecutor({ ...executorContext(parts, progress, version), controlKey: store.controlKey(stack) }, spec, last?.current, current).run(plan);
      const record: ReleaseRecord = {
        stack, version, at: new Date().toISOString(), reason, description, commit: change.commit,
        spec: change.spec, env: change.env, current, plan,
      };
      store.saveRelease(record);
      recorded = true;
      if (reason === 'env') store.writeEnv(stack, change.env);
      task.end('done');
      const released = releaseInfo(record, parts.ctx.config?.routerPort);
      progress.step(`${stack} v${version} is live${released.urls.length > 0 ? `: ${released.urls.join(' ')}` : ''}`);
      return released;
    } catch (err) {
      progress.error(err instanceof QuarryError ? err.message : `internal error: ${(err as Error)?.stack ?? String(err)}`);
      if (recorded) progress.error(`v${version} was recorded and runs; it is the stack's release`);
      else await putBack(parts, stack, version, last, plan, progress);
      task.end('failed');
      throw err;
    }
  } finally {
    unlock();
    parts.collector?.request();
  }
}

/**
 * After a failed plan: puts the stack back on the last release, still under the stack's lock
 * and while the task runs (an HQ that dies now leaves a running task, which recovery undoes).
 * If that fails too, the task says which units may still run the failed release's code.
 */
async function putBack(parts: ControlParts, stack: string, version: number, last: ReleaseRecord | undefined,
  plan: Instruction[], progress: Progress): Promise<void> {
  progress.error(`v${version} failed; ${last ? `putting ${stack} back on v${last.version}` : `removing what it started`}`);
  try {
    await undo(parts, stack, last, progress);
  } catch (err) {
    progress.error(`could not put ${stack} back ${last ? `on v${last.version}` : 'to nothing'}: ${(err as Error)?.message ?? String(err)}`);
    progress.error(`${await stillNew(parts, stack, version, plan)}; see quarry ps ${stack}, then push again${last ? ` or quarry rollback ${stack} v${last.version}` : ''}`);
    parts.ctx.log(`${stack}: undoing v${version} failed: ${(err as Error)?.stack ?? String(err)}`);
  }
}

/** What may still run a failed release's code: its containers by name, or the plan's units when they cannot be listed. */
async function stillNew(parts: ControlParts, stack: string, version: number, plan: Instruction[]): Promise<string> {
  try {
    const mine = (await parts.cluster.list(stack)).filter((c) => c.release === `v${version}` && c.state !== 'exited' && c.state !== 'dead');
    if (mine.length === 0) return `no container of v${version} runs, but the stack may not be whole`;
    return `still on v${version}'s code: ${mine.map((c) => `${c.name} (${c.unit})`).join(', ')}`;
  } catch {
    const units = unitsOf(plan);
    return units.length > 0 ? `${units.join(', ')} may still run v${version}'s code` : `the stack may not be whole`;
  }
}
