import type { StackSpec } from '../compiler/index.js';
import { desiredUnits } from './desired.js';
import type {
  CurrentState, DeployInstruction, DesiredUnit, Instruction, Plan, PlanOptions, RunningUnit,
} from './model.js';

/**
 * The plan: what must be done so that `current` becomes what `stack` asks for. Pure.
 *
 * - New services get ENSURE; new web, worker and element units get DEPLOY, web ones ROUTE.
 * - A unit whose identity (image, code, env, command, ports, wiring…) changed gets DEPLOY;
 *   one whose scale alone changed, SCALE; a web node whose domains changed, ROUTE.
 * - Services are never redeployed by a push: a changed service gives a notice and keeps
 *   running, unless `options.replace` names it (then KILL and ENSURE).
 * - A scale set by `quarry scale` stands until quarry.yml's own scale changes; a load
 *   shard keeps its size, brought within a changed min and max.
 * - Units that are gone get KILL, last, once everything new is up.
 *
 * Digests are compared as they are: `current` must have been recorded with the same
 * `options.digestKey`, or every node and element looks changed (a service never does).
 */
export function diffPlan(stack: StackSpec, current: CurrentState | undefined, options: PlanOptions): Plan {
  const running = new Map((current?.units ?? []).map((u) => [u.name, u]));
  const replace = new Set(options.replace ?? []);
  const instructions: Instruction[] = [];
  const kills: Instruction[] = [];
  const notices: string[] = [];
  const base = { stack: stack.name };
  const desired = desiredUnits(stack, options);

  for (const name of replace) {
    const unit = desired.find((u) => u.name === name);
    if (!unit || unit.kind !== 'service') notices.push(`--replace ${name}: there is no service '${name}' in this stack; nothing replaced`);
  }

  for (const unit of desired) {
    const was = running.get(unit.name);
    const target = unit.kind === 'element' ? { element: unit.name } : { node: unit.name };

    if (was && (was.kind === 'service') !== (unit.kind === 'service')) {
      // A service became a node or the other way round: nothing carries over.
      instructions.push({ op: 'KILL', ...base, ...(was.kind === 'element' ? { element: was.name } : { node: was.name }), kind: was.kind });
      running.delete(unit.name);
      instructions.push(...fresh(unit, base));
      continue;
    }
    if (!was) {
      instructions.push(...fresh(unit, base));
      continue;
    }

    if (unit.kind === 'service') {
      if (was.digest === unit.digest) continue;
      if (replace.has(unit.name)) {
        instructions.push({ op: 'KILL', ...base, node: unit.name, kind: 'service' }, ...fresh(unit, base));
      } else {
        notices.push(`service '${unit.name}' changed (${was.image === unit.image ? 'its settings' : `image ${was.image} → ${unit.image}`}), ` +
          `but a push never restarts a service: the running one keeps its old definition and its data. ` +
          `To replace it, push again with \`git push -o replace=${unit.name}\` (or \`quarry build --replace ${unit.name}\` to preview); its container starts anew.`);
      }
      continue;
    }

    const scale = targetScale(unit, was, notices);
    if (was.digest !== unit.digest || was.kind !== unit.kind) {
      instructions.push(deploy(unit, base, scale));
    } else if (scale !== was.scale) {
      instructions.push({ op: 'SCALE', ...base, ...target, from: was.scale, to: scale });
    }
    const domains = unit.kind === 'web' ? unit.domains : [];
    if (!sameList(domains, was.domains)) {
      instructions.push({ op: 'ROUTE', ...base, node: unit.name, domains, from: was.domains });
    }
  }

  const wanted = new Set(desired.map((u) => u.name));
  for (const was of running.values()) {
    if (wanted.has(was.name)) continue;
    kills.push({ op: 'KILL', ...base, ...(was.kind === 'element' ? { element: was.name } : { node: was.name }), kind: was.kind });
  }
  return { stack: stack.name, instructions: [...instructions, ...kills], notices };
}

function fresh(unit: DesiredUnit, base: { stack: string }): Instruction[] {
  if (unit.kind === 'service') {
    return [{
      op: 'ENSURE', ...base, node: unit.name, image: unit.image, memory: unit.memory, digest: unit.digest,
      ...(unit.build && { build: unit.build }),
      ...(unit.command && { command: unit.command }),
      ...(unit.port !== undefined && { port: unit.port }),
    }];
  }
  const out: Instruction[] = [deploy(unit, base, unit.scale)];
  if (unit.kind === 'web' && unit.domains.length > 0) {
    out.push({ op: 'ROUTE', ...base, node: unit.name, domains: unit.domains, from: [] });
  }
  return out;
}

function deploy(unit: DesiredUnit, base: { stack: string }, scale: number): DeployInstruction {
  const kind = unit.kind as DeployInstruction['kind'];
  return {
    op: 'DEPLOY', ...base, ...(kind === 'element' ? { element: unit.name } : { node: unit.name }),
    kind, image: unit.image, memory: unit.memory, scale, env: unit.env, digest: unit.digest,
    ...(unit.build && { build: unit.build }),
    ...(unit.command && { command: unit.command }),
    ...(unit.port !== undefined && { port: unit.port }),
    ...(unit.health !== undefined && { health: unit.health }),
    ...(unit.shard && { shard: unit.shard }),
    ...(unit.config && { config: unit.config }),
  };
}

/** How many containers a unit should run after this plan. */
function targetScale(unit: DesiredUnit, was: RunningUnit, notices: string[]): number {
  if (unit.shard) return Math.min(unit.shard.max, Math.max(unit.shard.min, was.scale));
  if (unit.scale !== was.declaredScale) return unit.scale;
  if (was.scale !== unit.scale) {
    notices.push(`${unit.kind === 'element' ? 'element' : 'node'} '${unit.name}' keeps the ${was.scale} containers set by \`quarry scale\`; ` +
      `quarry.yml says ${unit.scale}, and takes over when its own value changes`);
  }
  return was.scale;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
