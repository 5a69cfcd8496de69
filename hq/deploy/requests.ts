import type { StackSpec } from '../../compiler/index.js';
import type { Progress } from '../../launcher/index.js';
import {
  changeEnv, diffPlan, domainClaimFaults, envFaults, scaleFaults, scaleInstructions, scalesOf, withEnv,
} from '../../plan/index.js';
import type { PushInfo, ReleaseInfo } from '../control.js';
import { BadRequestError } from '../errors.js';
import type { ControlParts } from './context.js';
import type { ReleaseRecord } from './records.js';
import { runTask } from './tasks.js';

/*
 * The changes a stack can be asked for: a push, `quarry scale`, `quarry env` and `quarry
 * rollback`. Each is checked by plan/ before anything runs (faults are a BadRequestError),
 * then becomes a task whose plan is made against the release found once the stack's lock is held.
 */

/**
 * A push's release: the pushed stack with the env the stack has, diffed against what runs.
 * A push whose web nodes name a domain another stack routes is refused before anything runs.
 */
export async function pushRelease(parts: ControlParts, stack: string, spec: StackSpec, progress: Progress, push: PushInfo): Promise<void> {
  const others = parts.store.stacks().filter((s) => s !== stack).flatMap((s) => parts.store.latest(s)?.current ?? []);
  const faults = domainClaimFaults(stack, spec, others);
  if (faults.length > 0) throw new BadRequestError(faults.join('; '));
  await runTask(parts, stack, 'push', `push of ${push.commit.slice(0, 7)}`, progress, (last) => {
    const env = last?.env ?? parts.store.env(stack);
    const plan = diffPlan(withEnv(spec, env), last?.current, { replace: push.replace, digestKey: parts.digestKey });
    return { spec, env, commit: push.commit, plan: plan.instructions, notices: plan.notices };
  });
}

/** Sets the number of containers of nodes and elements: a release with the same code and env. */
export async function scaleRequest(parts: ControlParts, stack: string, changes: Record<string, number>, progress: Progress,
  by: { reason: 'scale' | 'autoscale'; description?: string } = { reason: 'scale' }): Promise<ReleaseInfo> {
  const last = lastOf(parts, stack);
  const faults = scaleFaults(last.spec, changes);
  if (faults.length > 0) throw new BadRequestError(faults.join('; '));
  const description = by.description ?? `scale ${Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return runTask(parts, stack, by.reason, description, progress, (now) => {
    const base = now ?? last;
    const plan = scaleInstructions(last.spec, base.current, changes);
    return { spec: base.spec, env: base.env, commit: base.commit, plan, notices: [] };
  });
}

/** Sets and unsets env keys: a release that redeploys what uses the env. */
export async function envRequest(parts: ControlParts, stack: string, set: Record<string, string>, unset: string[], progress: Progress): Promise<ReleaseInfo> {
  const last = lastOf(parts, stack);
  const faults = envFaults(last.spec, set, unset);
  if (faults.length > 0) throw new BadRequestError(faults.join('; '));
  const what = [...Object.keys(set).map((k) => `set ${k}`), ...unset.map((k) => `unset ${k}`)];
  return runTask(parts, stack, 'env', `env ${what.join(', ')}`, progress, (now) => {
    const base = now ?? last;
    const env = changeEnv(base.env, set, unset);
    const plan = diffPlan(withEnv(base.spec, env), base.current, { digestKey: parts.digestKey });
    return { spec: base.spec, env, commit: base.commit, plan: plan.instructions, notices: plan.notices };
  });
}

/** A new release with the code, env and scale of release `version`. */
export async function rollbackRequest(parts: ControlParts, stack: string, version: number, progress: Progress): Promise<ReleaseInfo> {
  lastOf(parts, stack);
  const target = parts.store.release(stack, version);
  return runTask(parts, stack, 'rollback', `rollback to v${version}`, progress, (last) => {
    const plan = diffPlan(withEnv(target.spec, target.env), last?.current, { digestKey: parts.digestKey });
    return {
      spec: target.spec, env: target.env, commit: target.commit, plan: plan.instructions, notices: [],
      scales: scalesOf(target.current),
    };
  });
}

/** The stack's last release; a stack never released cannot be scaled, changed or rolled back. */
function lastOf(parts: ControlParts, stack: string): ReleaseRecord {
  parts.store.check(stack);
  const last = parts.store.latest(stack);
  if (!last) throw new BadRequestError(`stack '${stack}' has no release yet; push it first`);
  return last;
}
