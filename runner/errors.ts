import { QuarryError } from '../errors/index.js';

/** The stack runs already (started by `quarry run` or `quarry start` from this machine). */
export class AlreadyRunningError extends QuarryError {}

/** A unit cannot be run the way asked (e.g. a node with no `command` under --processes). */
export class CannotRunError extends QuarryError {}

/** A unit did not come up: it exited, or never answered; what it printed last is in the message. */
export class UnitFailedError extends QuarryError {
  constructor(readonly unit: string, reason: string, output: string[] = []) {
    super(`${unit} did not start: ${reason}${output.length ? `\n  its last output:\n${output.map((l) => `  | ${l}`).join('\n')}` : ''}`);
  }
}

/** `quarry stop` of a stack that is not running. */
export class NotRunningError extends QuarryError {}
