import type { StackSpec } from '../compiler/index.js';
import { unitDefinitions } from './desired.js';
import type { CurrentState, Instruction, ScaleInstruction, UnitKind } from './model.js';

/**
 * What is wrong with a scale request (`quarry scale web=3 mid=2`) against a stack: each fault
 * as the user sees it, none when it can be carried out. Every name must be a node or an
 * element of the stack (not a service: it runs one container), every count a whole number
 * from 0 to 100, and within a shard's min and max.
 */
export function scaleFaults(spec: StackSpec, changes: Record<string, number>): string[] {
  const units = new Map(unitDefinitions(spec).map((u) => [u.name, u]));
  const faults: string[] = [];
  for (const [name, n] of Object.entries(changes)) {
    const unit = units.get(name);
    if (!unit) faults.push(`no node or element '${name}' in ${spec.name} (it has ${[...units.keys()].join(', ')})`);
    else if (unit.kind === 'service') faults.push(`'${name}' is a service: it runs one container`);
    else if (!Number.isInteger(n) || n < 0 || n > 100) faults.push(`${name}=${n}: a whole number from 0 to 100 is required`);
    else if (unit.shard && (n < unit.shard.min || n > unit.shard.max)) faults.push(`${name}=${n}: its shard runs ${unit.shard.min} to ${unit.shard.max} members`);
  }
  if (Object.keys(changes).length === 0) faults.push('say what to scale: NAME=N');
  return faults;
}

/**
 * The plan of a scale request that `scaleFaults` found nothing wrong with: a SCALE for each
 * unit whose count changes, from what runs (or, for a unit not running, the stack's own
 * scale) to the count asked for. Names that are not nodes or elements of `spec` are skipped.
 */
export function scaleInstructions(spec: StackSpec, current: CurrentState | undefined, changes: Record<string, number>): Instruction[] {
  const units = new Map(unitDefinitions(spec).map((u) => [u.name, u]));
  const plan: Instruction[] = [];
  for (const [name, to] of Object.entries(changes)) {
    const unit = units.get(name);
    if (!unit || unit.kind === 'service') continue;
    const from = current?.units.find((u) => u.name === name)?.scale ?? unit.scale;
    if (from !== to) plan.push(scaleStep(spec.name, unit.kind, name, from, to));
  }
  return plan;
}

/** How many containers each unit runs in `current`: what a release's scale is, and what a rollback restores. */
export function scalesOf(current: CurrentState): Record<string, number> {
  return Object.fromEntries(current.units.map((u) => [u.name, u.scale]));
}

/**
 * A plan that ends with the given scales (a rollback restores the scale of the release it
 * goes back to): a DEPLOY takes the scale, a SCALE is retargeted (and dropped when it then
 * changes nothing), and a unit the plan leaves alone gets a SCALE when its count differs.
 * Services and units the plan kills are left as they are; KILLs stay last.
 */
export function withScales(plan: Instruction[], current: CurrentState | undefined, scales: Record<string, number>, stack: string): Instruction[] {
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
    extra.push(scaleStep(stack, unit.kind, unit.name, unit.scale, want));
  }
  // The KILLs of gone units end the plan (once all else is up) and stay last; a KILL inside
  // the plan (a unit that changed kind: KILL, then its new ENSURE or DEPLOY) keeps its place.
  let tail = out.length;
  while (tail > 0 && out[tail - 1]!.op === 'KILL') tail--;
  const body = out.slice(0, tail).filter((s) => !(s.op === 'SCALE' && s.from === s.to));
  return [...body, ...extra, ...out.slice(tail)];
}

function scaleStep(stack: string, kind: UnitKind, name: string, from: number, to: number): ScaleInstruction {
  return { op: 'SCALE', stack, ...(kind === 'element' ? { element: name } : { node: name }), from, to };
}
