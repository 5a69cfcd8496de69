import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { tokenMatches } from '../keys/index.js';
import { ApiRequestError, ApiUnauthorizedError } from '../errors.js';
import { checkFromPage, clearedCookie, cookieOf, SESSION_COOKIE, sessionCookie, type Sessions } from './session.js';
import type { SessionBody } from './wire.js';

/** Where the dashboard's route is: `/ui/` on the API's port. */
export const UI_PREFIX = '/ui';

/**
 * The folder `npm run build` writes the dashboard's files to: `dist/ui/` of the package,
 * whether HQ runs from its sources (hq/api/) or compiled (dist/hq/api/).
 */
export function builtUiDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'dist', 'ui');
}

/**
 * The page may load only HQ's own files and talk only to HQ: no inline script, no other
 * origin, no framing.
 */
const PAGE_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The dashboard: its built files under `/ui/`, and its session (`GET`, `POST`, `DELETE
 * /ui/session`). The page then calls the same `/v1` routes as the command line, with the
 * session cookie instead of the token.
 */
export function uiRoutes(token: string, sessions: Sessions, uiDir: string): express.Router {
  const ui = express.Router();
  ui.use((_req, res, next) => {
    for (const [name, value] of Object.entries(PAGE_HEADERS)) res.setHeader(name, value);
    next();
  });

  // A session check answers 200 either way: a visit before the login logs no error.
  ui.get('/session', (req, res) => {
    const id = cookieOf(req, SESSION_COOKIE);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ loggedIn: id !== undefined && sessions.valid(id) } satisfies SessionBody);
  });
  ui.post('/session', express.json({ limit: '16kb' }), (req: Request, res: Response, next: NextFunction) => {
    try {
      checkFromPage(req);
      const presented = isRecord(req.body) ? req.body.token : undefined;
      if (typeof presented !== 'string' || presented === '') throw new ApiRequestError('give HQ\'s API token as {"token": "…"}');
      if (!tokenMatches(presented.trim(), token)) throw new ApiUnauthorizedError('HQ refused the token: it is not this HQ\'s API token');
      const { id, maxAgeMs } = sessions.open();
      res.setHeader('Set-Cookie', sessionCookie(id, maxAgeMs, req.secure));
      res.setHeader('Cache-Control', 'no-store');
      res.json({ loggedIn: true } satisfies SessionBody);
    } catch (err) {
      next(err);
    }
  });
  ui.delete('/session', (req: Request, res: Response, next: NextFunction) => {
    try {
      checkFromPage(req);
      const id = cookieOf(req, SESSION_COOKIE);
      if (id !== undefined) sessions.close(id);
      res.setHeader('Set-Cookie', clearedCookie(req.secure));
      res.json({ loggedIn: false } satisfies SessionBody);
    } catch (err) {
      next(err);
    }
  });

  ui.use((_req, res, next) => {
    if (existsSync(join(uiDir, 'index.html'))) return next();
    res.status(503).type('text/plain').send(`HQ's dashboard is not built: run 'npm run build' in quarry's folder (no ${join(uiDir, 'index.html')})\n`);
  });
  ui.use(express.static(uiDir, { index: 'index.html', redirect: true, fallthrough: true, maxAge: 0 }));
  return ui;
}
