// locknet: the grid's firewall. A pure core (members and public ports in, iptables-restore and
// ipset scripts out) and an applier that puts it in force on the host it runs on.
export { LocknetApplyError, LocknetInputError } from './errors.js';
export { parseMembers, parsePorts, type Member } from './members.js';
export {
  CHAINS, SETS, FAMILIES, ruleSet, ipsetScript, chainRules, restoreScript, flushScript, parseTable, tableInForce, hasDockerUser,
  type Family, type RuleSet, type RuleSetInput, type TableState,
} from './rules.js';
export { Locknet, runTool, type Applied, type InForce, type LocknetOptions } from './applier.js';
export { runLocknetCommand, describeInForce, LOCKNET_USAGE, type LocknetIO } from './command.js';
