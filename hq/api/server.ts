import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { HqControl } from '../control.js';
import type { HomeLayout } from '../../home/index.js';
import { errorHandler } from './errors.js';
import { apiRoutes } from './routes.js';
import type { CertificateStore } from '../certs/index.js';
import { Sessions } from './session.js';
import { builtUiDir, UI_PREFIX, uiRoutes } from './ui.js';
import { API_PREFIX } from './wire.js';
import { ApiRouteNotFoundError } from '../errors.js';

export interface ApiOptions {
  control: HqControl;
  /** HQ's home: `POST /v1/keys` authorises keys in its `keys/authorized_keys`. */
  home: HomeLayout;
  /** HQ's API token (never logged). */
  token: string;
  host: string;
  /** 0 picks a free one. */
  port: number;
  log: (line: string) => void;
  /** The dashboard's built files; default `dist/ui/` of the package (`npm run build`). */
  uiDir?: string;
  /** How often `GET /v1/stacks/:stack/top/events` sends a view, in ms; default 1000. */
  topEveryMs?: number;
  /** The dashboard's sessions; default: new ones, lasting 12 hours. */
  sessions?: Sessions;
  /** The domains' certificates (`/v1/certs`); absent: the API says HQ keeps none. */
  certs?: CertificateStore;
}

export interface Api {
  port: number;
  /** `http://HOST:PORT` as a local command reaches it (loopback for a wildcard host). */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts HQ's HTTP API (express) on `host:port`, routes under `/v1`, and the dashboard under
 * `/ui/` (`/` leads there).
 */
export async function startApi(options: ApiOptions): Promise<Api> {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const sessions = options.sessions ?? new Sessions();
  const uiDir = options.uiDir ?? builtUiDir();
  app.use(API_PREFIX, apiRoutes(options.control, options.token, options.log, options.home, sessions, options.topEveryMs, options.certs));
  app.use(UI_PREFIX, uiRoutes(options.token, sessions, uiDir));
  app.get('/', (_req, res) => res.redirect(302, `${UI_PREFIX}/`));
  app.get('/favicon.ico', (_req, res) => res.redirect(301, `${UI_PREFIX}/favicon.svg`));
  app.use((req, _res, next) => next(new ApiRouteNotFoundError(`HQ's API has no ${req.method} ${req.path}; its routes are under ${API_PREFIX}/`)));
  app.use(errorHandler(options.log));

  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Followed logs hold their connection open until the caller goes: end them.
      server.closeAllConnections();
      await closed;
    },
  };
}
