import type { StackSpec } from '../compiler/index.js';
import { unitDefinitions } from './desired.js';
import type { CurrentState, Instruction, RunningUnit } from './model.js';

/**
 * What runs once a plan's instructions have all been carried out: the `current` for the
 * next diff. HQ records it after a release; tests use it to show that a plan, once
 * applied, diffs to nothing.
 */
export function applyPlan(stack: StackSpec, current: CurrentState | undefined, instructions: Instruction[]): CurrentState {
  const units = new Map((current?.units ?? []).map((u) => [u.name, { ...u }]));
  const desired = new Map(unitDefinitions(stack).map((u) => [u.name, u]));
  for (const step of instructions) {
    const name = step.op === 'ENSURE' || step.op === 'ROUTE' ? step.node : (step.node ?? step.element)!;
    const want = desired.get(name);
    switch (step.op) {
      case 'KILL':
        units.delete(name);
        break;
      case 'ENSURE':
        units.set(name, { name, kind: 'service', image: step.image, digest: step.digest, scale: 1, declaredScale: 1, domains: [] });
        break;
      case 'DEPLOY': {
        const was = units.get(name);
        const unit: RunningUnit = {
          name, kind: step.kind, image: step.image, digest: step.digest, scale: step.scale,
          declaredScale: want?.scale ?? step.scale, domains: was?.domains ?? [],
        };
        units.set(name, unit);
        break;
      }
      case 'SCALE': {
        const unit = units.get(name);
        if (unit) {
          unit.scale = step.to;
          unit.declaredScale = want?.scale ?? unit.declaredScale;
        }
        break;
      }
      case 'ROUTE': {
        const unit = units.get(name);
        if (unit) unit.domains = [...step.domains];
        break;
      }
    }
  }
  // A plan that changed nothing about a unit still adopts quarry.yml's declared scale.
  for (const unit of units.values()) {
    const want = desired.get(unit.name);
    if (want && want.kind !== 'service' && !want.shard) unit.declaredScale = want.scale;
  }
  return { stack: stack.name, units: [...units.values()] };
}
