import type { StackSpec } from '../../compiler/index.js';
import { QuarryError } from '../../errors/index.js';
import { StackExecutor, type Progress } from '../../launcher/index.js';
import { applyPlan, withEnv, withScales, type Instruction } from '../../plan/index.js';
import type { ReleaseInfo, ReleaseReason } from '../control.js';
import { executorContext, type ControlParts } from './context.js';
import type { ReleaseRecord } from './records.js';
import { releaseInfo } from './release-info.js';

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
 * release is the commit point: a task that fails records none, and what ran keeps running.
 */
export async function runTask(parts: ControlParts, stack: string, reason: ReleaseReason, description: string, to: Progress,
  make: (last: ReleaseRecord | undefined) => Change): Promise<ReleaseInfo> {
  const { store, tasks, locks } = parts;
  const unlock = await locks.acquire(stack, () => to.info('another change of this stack is running; waiting for it'));
  try {
    const last = store.latest(stack);
    const change = make(last);
    const version = store.nextVersion(stack, tasks.versionsTaken(stack));
    const task = tasks.begin({ stack, reason, description, version, ...(last && { previous: last.version }) });
    const progress = task.progress(to);
    try {
      const spec = withEnv(change.spec, change.env);
      const plan = change.scales ? withScales(change.plan, last?.current, change.scales, spec.name) : change.plan;
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
      if (reason === 'env') store.writeEnv(stack, change.env);
      task.end('done');
      const released = releaseInfo(record, parts.ctx.config?.routerPort);
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
