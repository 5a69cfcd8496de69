export { diffPlan } from './diff.js';
export { applyPlan } from './apply.js';
export { desiredUnits, buildTag } from './desired.js';
export { parseCurrentState, CurrentStateError } from './current-file.js';
export { formatPlan, describeInstruction } from './format.js';
export type * from './model.js';
export { unitWiring, inPortNumbers, isWired, FIRST_IN_PORT, type WiringAddressing } from './wiring.js';
