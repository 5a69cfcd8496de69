import { QuarryError } from '../errors/index.js';
import { formatDuration } from './config.js';

/**
 * Every error HQ itself raises, in one place: callers (the API's status codes, the CLI, tests)
 * branch on these classes, never on message text.
 */

/** A file given to `quarry keys add` that is not one OpenSSH public key. */
export class PublicKeyError extends QuarryError {}

/** Another HQ already serves this home (its hook socket answers). */
export class HomeInUseError extends QuarryError {}

/** A push or fetch named a repository that cannot be a stack. */
export class StackNameError extends QuarryError {}

/** A stack HQ has never had pushed. */
export class StackNotFoundError extends QuarryError {
  constructor(readonly stackName: string) {
    super(`no stack '${stackName}' on this HQ; push it first (git push ssh://quarry@HOST:PORT/${stackName} main)`);
  }
}

/** A release number the stack never had. */
export class ReleaseNotFoundError extends QuarryError {
  constructor(readonly stackName: string, readonly version: number) {
    super(`stack '${stackName}' has no release v${version}; see quarry releases ${stackName}`);
  }
}

/** A request HQ understands but refuses: an unknown node, a bad scale, a bad env key. */
export class BadRequestError extends QuarryError {}

/** An SSH exec request that is not a git push or fetch. */
export class NotGitCommandError extends QuarryError {}

/** A request the API itself refuses: a missing field, a wrong type, a bad JSON body. */
export class ApiRequestError extends QuarryError {}

/** A route that does not exist. */
export class ApiRouteNotFoundError extends QuarryError {}

/** The token is missing or not HQ's. */
export class ApiUnauthorizedError extends QuarryError {}

/**
 * A change asked with the dashboard's session cookie but not by the dashboard's own page
 * (no `X-Quarry-UI` header, or another origin): refused, as a cross-site request could be.
 */
export class ApiForbiddenError extends QuarryError {}

/** HQ's host key file is there but unreadable as a key. */
export class HostKeyError extends QuarryError {}

/** The pushed tree cannot be used as it is (e.g. a link out of the repo). */
export class CheckoutError extends QuarryError {}

/** A push quarry refuses because of which refs it moves. */
export class PushRefusedError extends QuarryError {}

/** A port HQ cannot listen on; names the setting to change. */
export class ListenError extends QuarryError {}

/** The token file exists but holds nothing usable. */
export class TokenFileError extends QuarryError {}

/** `<home>/keys/digest.key` does not hold a digest key. */
export class DigestKeyFileError extends QuarryError {}

/** HQ's own etcd did not start (the port taken, the binary missing, its data refused). */
export class EtcdStartError extends QuarryError {}

/** A push whose quarry.yml names another stack than the one pushed to. */
export class StackMismatchError extends QuarryError {}

/** HQ's own registry could not start, answer or collect. */
export class RegistryError extends QuarryError {}

/**
 * A change that waited for its stack's lock (hq/stack-lock.ts) longer than it was willing to:
 * it gave up, and names who holds the lock.
 */
export class LockWaitTimeout extends QuarryError {
  constructor(readonly stackName: string, readonly holder: { description: string; since: Date }, readonly waitedMs: number) {
    super(`gave up after waiting ${formatDuration(waitedMs)} for ${stackName}: ${holder.description} holds its lock ` +
      `(since ${holder.since.toISOString().slice(11, 19)} UTC)`);
  }
}
