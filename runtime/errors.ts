import { QuarryError } from '../errors/index.js';

/** A wiring description that cannot be used: bad JSON, a missing field, an unknown port. */
export class WiringError extends QuarryError {}

/** Element code that cannot be loaded or does not declare what its ports need. */
export class ElementCodeError extends QuarryError {}

/** A port name the element's wiring does not have, or a port used the wrong way. */
export class PortError extends QuarryError {}

/** A query that got no answer from every member within its timeout. */
export class QueryTimeoutError extends QuarryError {
  constructor(
    readonly port: string,
    readonly member: string,
    readonly timeoutMs: number,
  ) {
    super(`query on port '${port}' to member ${member} got no answer within ${timeoutMs} ms`);
  }
}

/** A query the answering element failed on: its handler threw; the message is its error's. */
export class QueryFailedError extends QuarryError {
  constructor(
    readonly port: string,
    readonly member: string,
    readonly remoteMessage: string,
  ) {
    super(`query on port '${port}' failed at member ${member}: ${remoteMessage}`);
  }
}

/** A query on a port that has no peers to ask. */
export class NoPeersError extends QuarryError {
  constructor(readonly port: string) {
    super(`query port '${port}' has no peers to ask`);
  }
}

/** The element has stopped; its ports take no more logs or queries. */
export class ElementStoppedError extends QuarryError {}

/** A control request without the element's control key, or with another one: refused, nothing changed. */
export class ControlRefusedError extends QuarryError {}
