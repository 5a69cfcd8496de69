import type { ReleaseInfo } from '../control.js';

/**
 * The HTTP API's wire shapes, shared by the server (hq/api/) and its caller (cli/client.ts),
 * so that the two cannot drift apart.
 */

/** Every route but `GET /v1/health` wants `Authorization: Bearer <token>`. */
export const API_PREFIX = '/v1';

/** The body of every error answer. */
export interface ApiErrorBody {
  error: { name: string; message: string };
}

/**
 * One line of a long operation's NDJSON answer (scale, rollback, env): its progress as it
 * goes, then exactly one `result` or `failed`, last. An operation that fails before its
 * first line gets a plain error answer (404, 400, 500) instead.
 */
export type OperationLine =
  | { step: string }
  | { info: string }
  | { error: string }
  | { result: ReleaseInfo }
  | { failed: { name: string; message: string } };

/** `POST /v1/stacks/:stack/scale` */
export interface ScaleRequest { changes: Record<string, number> }
/** `POST /v1/stacks/:stack/rollback` */
export interface RollbackRequest { version: number }
/** `POST /v1/stacks/:stack/env` */
export interface EnvRequest { set?: Record<string, string>; unset?: string[] }

/** `GET /v1/health`: open, to tell that an HQ answers at a URL. */
export interface HealthBody { ok: true; service: 'quarry-hq' }
