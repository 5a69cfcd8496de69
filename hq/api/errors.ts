import type { NextFunction, Request, Response } from 'express';
import { QuarryError } from '../../errors/index.js';
import { UnknownSizeError } from '../../pacific/index.js';
import { SliceGridLimitError } from '../../slicegrid/index.js';
import { SmallModeError } from '../../launcher/index.js';
import {
  ApiForbiddenError, ApiRequestError, ApiRouteNotFoundError, ApiUnauthorizedError, BadRequestError, PublicKeyError, ReleaseNotFoundError, StackNameError, StackNotFoundError,
} from '../errors.js';
import type { ApiErrorBody } from './wire.js';
import { CertificateNotFoundError, CertificateRefusedError } from '../certs/index.js';

/**
 * The HTTP status for an error: what the caller did wrong, or 500 for HQ's own faults.
 * A server size no provider knows and the grid's min or max are the caller's to change
 * (400); any other QuarryError (a provider's refusal, a server that did not boot) is a 500
 * whose message still reaches the caller as it is.
 */
export function statusOf(err: unknown): number {
  if (err instanceof ApiUnauthorizedError) return 401;
  if (err instanceof ApiForbiddenError) return 403;
  if (err instanceof StackNotFoundError || err instanceof ReleaseNotFoundError || err instanceof ApiRouteNotFoundError) return 404;
  if (err instanceof BadRequestError || err instanceof ApiRequestError || err instanceof StackNameError) return 400;
  // `POST /v1/keys` with text that is not one OpenSSH public key (or is a private key).
  if (err instanceof PublicKeyError) return 400;
  if (err instanceof CertificateRefusedError) return 400;
  if (err instanceof CertificateNotFoundError) return 404;
  if (err instanceof UnknownSizeError || err instanceof SliceGridLimitError || err instanceof SmallModeError) return 400;
  // express.json()'s own errors (bad JSON, too large) carry their status.
  const status = (err as { status?: unknown; type?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500 && typeof (err as { type?: unknown }).type === 'string') return status;
  return 500;
}

/**
 * The error's body: a QuarryError's message as it is (it is written for the user), a body
 * parser's in words, anything else as a bare name and message; never a stack trace.
 */
export function bodyOf(err: unknown, status: number): ApiErrorBody {
  if (err instanceof QuarryError) return { error: { name: err.name, message: err.message } };
  if (status === 400 && (err as { type?: string }).type === 'entity.parse.failed') {
    return { error: { name: 'ApiRequestError', message: `the request body is not valid JSON: ${(err as Error).message}` } };
  }
  if (status >= 400 && status < 500) return { error: { name: 'ApiRequestError', message: (err as Error).message } };
  return { error: { name: (err as Error)?.name ?? 'Error', message: `HQ failed: ${(err as Error)?.message ?? String(err)}; HQ's log has the details` } };
}

/** express's last handler: JSON errors, with the stack of unexpected ones in HQ's log. */
export function errorHandler(log: (line: string) => void) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const status = statusOf(err);
    if (status === 500) log(`API ${req.method} ${req.originalUrl.split('?')[0]}: ${(err as Error)?.stack ?? String(err)}`);
    if (res.headersSent) {
      res.end();
      return;
    }
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="quarry"');
    res.status(status).json(bodyOf(err, status));
  };
}
