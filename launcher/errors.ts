import { QuarryError } from '../errors/index.js';

/** `docker build` failed: the message is docker's, with the end of the build's output. */
export class ImageBuildError extends QuarryError {
  constructor(readonly tag: string, readonly folder: string, readonly reason: string, readonly output: string[]) {
    super(`building ${folder} (${tag}) failed: ${reason}${output.length ? `\n${output.map((l) => `  | ${l}`).join('\n')}` : ''}`);
  }
}

/** A container did not become healthy in time; what it printed last is in the message. */
export class UnhealthyError extends QuarryError {
  constructor(readonly container: string, reason: string, logs: string) {
    super(`${container} did not become healthy: ${reason}${logs ? `\n  its last output:\n${logs.split('\n').map((l) => `  | ${l}`).join('\n')}` : ''}`);
  }
}

/** The docker engine could not be reached or refused a request. */
export class EngineError extends QuarryError {}

/** A grid operation (add or remove a server) asked of a cluster that is one engine. */
export class SmallModeError extends QuarryError {}
