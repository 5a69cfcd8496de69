import { randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { tokenMatches } from '../keys/index.js';
import { ApiForbiddenError, ApiUnauthorizedError } from '../errors.js';

/** The dashboard's session cookie: a random id HQ maps to a session it holds in memory. */
export const SESSION_COOKIE = 'quarry_session';
/** The header the dashboard's page sends with every change (a cross-site form cannot). */
export const UI_HEADER = 'x-quarry-ui';
/** How long a session lasts after the login. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** At most this many sessions are held: a new login past it ends the oldest. */
const MAX_SESSIONS = 1000;

/**
 * The dashboard's sessions, held by HQ (never in the cookie): a login trades the token for a
 * random id that ends at its expiry, at logout, or when HQ restarts.
 */
export class Sessions {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly ttlMs = SESSION_TTL_MS, private readonly now: () => number = Date.now) {}

  open(): { id: string; maxAgeMs: number } {
    if (this.expiries.size >= MAX_SESSIONS) this.expiries.delete(this.expiries.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.expiries.set(id, this.now() + this.ttlMs);
    return { id, maxAgeMs: this.ttlMs };
  }

  valid(id: string): boolean {
    const expiry = this.expiries.get(id);
    if (expiry === undefined) return false;
    if (this.now() >= expiry) {
      this.expiries.delete(id);
      return false;
    }
    return true;
  }

  close(id: string): void {
    this.expiries.delete(id);
  }
}

/** The value of one cookie of the request, if it has it. */
export function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A change made with the session cookie must come from the dashboard's own page: it carries
 * `X-Quarry-UI: 1` (a cross-site form cannot set a header, and a cross-site fetch with one
 * needs a CORS preflight HQ never grants) and an `Origin` that is HQ's own.
 */
export function checkFromPage(req: Request): void {
  if (req.headers[UI_HEADER] !== '1') {
    throw new ApiForbiddenError('a change made with the dashboard\'s session must come from the dashboard (header X-Quarry-UI: 1); the command line sends the token instead');
  }
  const origin = req.headers.origin;
  let host: string | undefined;
  try {
    host = origin === undefined ? undefined : new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host === undefined || host !== req.headers.host) {
    throw new ApiForbiddenError(`a change made with the dashboard's session must come from HQ's own page, not from ${origin === undefined ? 'a page that did not say its origin' : JSON.stringify(origin)}`);
  }
}

/**
 * Every route but health: `Authorization: Bearer <token>` (the command line), compared in
 * constant time; or the dashboard's session cookie, with `checkFromPage` on every change.
 * A request with both is judged by its token.
 */
export function requireCaller(token: string, sessions: Sessions) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match) return next(new ApiUnauthorizedError('this HQ wants its API token (Authorization: Bearer TOKEN)'));
      if (!tokenMatches(match[1]!, token)) return next(new ApiUnauthorizedError('HQ refused the API token'));
      return next();
    }
    const session = cookieOf(req, SESSION_COOKIE);
    if (session === undefined) return next(new ApiUnauthorizedError('this HQ wants its API token (Authorization: Bearer TOKEN)'));
    if (!sessions.valid(session)) return next(new ApiUnauthorizedError('the dashboard\'s session ended (logged out, expired, or HQ restarted): log in again'));
    if (!SAFE_METHODS.has(req.method)) {
      try {
        checkFromPage(req);
      } catch (err) {
        return next(err);
      }
    }
    next();
  };
}

/** `Set-Cookie` for a session: HttpOnly, SameSite=Strict, Secure when HQ is reached over TLS. */
export function sessionCookie(id: string, maxAgeMs: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** `Set-Cookie` that ends the session cookie. */
export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}
