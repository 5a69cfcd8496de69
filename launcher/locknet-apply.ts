import { Locknet, ruleSet } from '../locknet/index.js';
import type { NetworkHost } from '../plan/index.js';

/**
 * What the agent (and HQ on its own host) puts in force for a membership: locknet's rules with
 * these public ports, through one long-lived applier, so that a join is one `ipset restore`.
 */
export function locknetApplier(publicPorts: number[], locknet = new Locknet()): (members: NetworkHost[]) => Promise<void> {
  return async (members) => {
    await locknet.apply(ruleSet(members, publicPorts));
  };
}
