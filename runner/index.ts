/**
 * The local runner: `quarry run` / `start` / `stop` of a whole stack on this machine, as
 * containers on one docker network or as child processes. See docs/run.md.
 */
export { runStack, RunAbortedError, type RunMode, type RunOptions, type RunningStack } from './run.js';
export { AlreadyRunningError, CannotRunError, NotRunningError, UnitFailedError } from './errors.js';
export {
  liveRunState, logFile, readRunState, removeRunState, stateFile, writeRunState, type RunState,
} from './state.js';
export { RUN_RELEASE, sweepStack } from './docker-mode.js';
export { compileLocal, localDocker, runOfFolder } from './local-stack.js';
export { checkoutRoot } from './runtime-import.js';
export { PrefixedOutput } from './output.js';
export { startRunAutoscaler, type AutoscaleHost, type RunAutoscaleOptions, type RunAutoscaler } from './autoscale.js';
export { resizeElement, retellProducer, type ResizeHost, type ResizeOutcome, type RunMember } from './resize.js';
