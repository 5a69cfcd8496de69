import type { StackSpec } from '../compiler/index.js';
import type { CurrentState } from './model.js';

/**
 * A domain answers for one stack only: the router would balance one domain over the web
 * containers of every stack that routed it, mixing two apps. So a stack may not claim a
 * domain that another stack's current release routes. Pure: `others` is what runs of every
 * other stack (their last releases' `current`). Names compare case-folded, as the router does.
 */
export function domainClaimFaults(stack: string, spec: StackSpec, others: readonly CurrentState[]): string[] {
  const claimed = new Map<string, { stack: string; node: string }>();
  for (const other of others) {
    if (other.stack === stack) continue;
    for (const unit of other.units) {
      if (unit.kind !== 'web') continue;
      for (const domain of unit.domains) claimed.set(domain.toLowerCase(), { stack: other.stack, node: unit.name });
    }
  }
  const faults: string[] = [];
  for (const node of spec.nodes) {
    if (node.type !== 'web') continue;
    for (const domain of node.domains) {
      const owner = claimed.get(domain.toLowerCase());
      if (!owner) continue;
      faults.push(`domain ${domain} is already routed to stack '${owner.stack}' (web node '${owner.node}'); ` +
        `stack '${stack}' (web node '${node.name}') cannot claim it too: take it out of one of the two quarry.yml files`);
    }
  }
  return faults;
}
