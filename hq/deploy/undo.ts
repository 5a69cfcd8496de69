import { StackExecutor, keys, type Progress } from '../../launcher/index.js';
import { withEnv, type Instruction } from '../../plan/index.js';
import { executorContext, type ControlParts } from './context.js';
import type { ReleaseRecord } from './records.js';

/**
 * Brings a stack to a recorded release whatever state its containers are in (containers of
 * the right definition kept, one per member, missing members started, everything else
 * removed, routes, endpoints and env rewritten); with no release, removes the stack.
 */
export async function convergeTo(parts: ControlParts, stack: string, release: ReleaseRecord | undefined, progress: Progress): Promise<void> {
  if (!release) return removeStack(parts, stack, progress);
  const spec = withEnv(release.spec, release.env);
  const context = { ...executorContext(parts, progress, release.version), controlKey: parts.store.controlKey(stack) };
  await new StackExecutor(context, spec, undefined, release.current).converge();
}

/**
 * Undoes a change that did not reach its release (a task that failed part way, or one a dead
 * HQ left): the stack goes back to `last`, the last recorded release, or, after a failed
 * first push (no `last`), nothing of it stays. Throws when that fails too.
 */
export async function undo(parts: ControlParts, stack: string, last: ReleaseRecord | undefined, progress: Progress): Promise<void> {
  progress.step(last ? `Putting ${stack} back on v${last.version}` : `Removing what this first release of ${stack} started`);
  await convergeTo(parts, stack, last, progress);
  progress.info(last ? `${stack} runs v${last.version} again` : `nothing of ${stack} runs`);
}

/** The units a plan starts, replaces, scales or stops: what a failure part way may leave changed. */
export function unitsOf(plan: Instruction[]): string[] {
  const names = plan.filter((s) => s.op !== 'ROUTE').map((s) => (s.op === 'ENSURE' ? s.node : (s.node ?? s.element)));
  return [...new Set(names.filter((n): n is string => n !== undefined))];
}

/** Undoes a first push: no release to go back to, so nothing of the stack may run, nor be routed or reached. */
export async function removeStack(parts: ControlParts, stack: string, progress: Progress): Promise<void> {
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
