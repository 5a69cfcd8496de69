import type { CertificateInfo } from '../../router/index.js';
import type { GridView, ReleaseInfo, ServerRow, TopView } from '../control.js';

/**
 * The HTTP API's wire shapes, shared by the server (hq/api/) and its caller (cli/client.ts),
 * so that the two cannot drift apart.
 */

/**
 * Every route but `GET /v1/health` wants `Authorization: Bearer <token>`, or the dashboard's
 * session cookie (with `X-Quarry-UI: 1` and HQ's own `Origin` on every change).
 */
export const API_PREFIX = '/v1';

/** `PUT /v1/certs/:domain`: PEM text, in the body only (never a URL or a log). */
export interface AddCertRequest { cert: string; key: string }
/** `GET /v1/certs`; never a key. */
export interface CertsBody { certs: CertificateInfo[] }
/** `PUT` and `DELETE /v1/certs/:domain`: the certificate added or removed. */
export interface CertBody { cert: CertificateInfo }

/** The body of every error answer. */
export interface ApiErrorBody {
  error: { name: string; message: string };
}

/** A progress line of a long operation, as HQ's push shows it: a heading, a detail, an error. */
export type ProgressLine = { step: string } | { info: string } | { error: string };

/**
 * One line of a long operation's NDJSON answer (scale, rollback, env, servers add and
 * remove): its progress as it goes, then exactly one `result` or `failed`, last. The result
 * is the release a change made (`ReleaseInfo`), or the server added or removed
 * (`ServerRow`). An operation that fails before its first line gets a plain error answer
 * (404, 400, 500) instead.
 */
export type OperationLine<R = ReleaseInfo> =
  | ProgressLine
  | { result: R }
  | { failed: { name: string; message: string } };

/** `POST /v1/stacks/:stack/scale` */
export interface ScaleRequest { changes: Record<string, number> }
/** `POST /v1/stacks/:stack/rollback` */
export interface RollbackRequest { version: number }
/** `POST /v1/stacks/:stack/env` */
export interface EnvRequest { set?: Record<string, string>; unset?: string[] }

/** `POST /v1/servers`: a server of `size` (a provider's size slug), or of the grid's size. */
export interface AddServerRequest { size?: string }

/**
 * `POST /v1/keys`: authorise a public key to push, in HQ's own home. `key` is the text of
 * one OpenSSH public key (`ssh-ed25519 AAAA… you@host`); `source` names it in messages (the
 * file the caller read it from), default `the key`.
 */
export interface AddKeyRequest { key: string; source?: string }
/** The answer of `POST /v1/keys`: the key's `SHA256:` fingerprint, and whether it was new. */
export interface AddKeyBody { fingerprint: string; added: boolean; comment: string }

/** `GET /v1/servers` */
export interface ServersBody { servers: ServerRow[] }
/** `GET /v1/grid`, `GET /v1/grid/:stack` */
export interface GridBody { grid: GridView }

/** `GET /v1/stacks/:stack/top`: one snapshot of what flows through the stack (`quarry top`). */
export interface TopBody { top: TopView }

/**
 * `GET /v1/stacks/:stack/top/events`: server-sent events, one `top` event (its data a
 * `TopBody`) at once and then about every second, until the caller goes away; a `failed`
 * event (its data an `ApiErrorBody`) ends it when HQ cannot read the view any more.
 */
export const TOP_EVENTS_EVERY_MS = 1000;

/** `GET`, `POST` (`{"token": "…"}`) and `DELETE /ui/session`: whether the caller holds a dashboard session. */
export interface SessionBody { loggedIn: boolean }

/** `GET /v1/health`: open, to tell that an HQ answers at a URL. */
export interface HealthBody { ok: true; service: 'quarry-hq' }
