import express, { type NextFunction, type Request, type Response } from 'express';
import type { HqControl } from '../control.js';
import type { HomeLayout } from '../../home/index.js';
import type { Progress } from '../../launcher/index.js';
import { addAuthorizedKey } from '../keys/index.js';
import type { CertificateStore } from '../certs/index.js';
import { stackFromPath } from '../stack-name.js';
import { bodyOf, statusOf } from './errors.js';
import { ApiRequestError, ApiRouteNotFoundError } from '../errors.js';
import { NdjsonAnswer } from './ndjson.js';
import { requireCaller, type Sessions } from './session.js';
import type {
  AddCertRequest, AddKeyBody, AddKeyRequest, CertBody, CertsBody, AddServerRequest, EnvRequest, GridBody, HealthBody, RollbackRequest, ScaleRequest, ServersBody, TopBody,
} from './wire.js';
import { TOP_EVENTS_EVERY_MS } from './wire.js';

type Handler = (req: Request, res: Response) => Promise<void>;

/** express 4 does not see a rejected promise: hand it to the error handler. */
function handle(fn: Handler) {
  return (req: Request, res: Response, next: NextFunction): void => {
    fn(req, res).catch(next);
  };
}

function stackOf(req: Request): string {
  return stackFromPath(String(req.params.stack));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function scaleRequest(body: unknown): ScaleRequest {
  const changes = isRecord(body) ? body.changes : undefined;
  if (!isRecord(changes) || Object.keys(changes).length === 0) {
    throw new ApiRequestError('give the changes as {"changes": {"NAME": N, …}}');
  }
  for (const [name, n] of Object.entries(changes)) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      throw new ApiRequestError(`changes.${name}: the number of containers must be a whole number from 0, got ${JSON.stringify(n)}`);
    }
  }
  return { changes: changes as Record<string, number> };
}

function rollbackRequest(body: unknown): RollbackRequest {
  const version = isRecord(body) ? body.version : undefined;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new ApiRequestError(`give the release as {"version": N} with N from 1, got ${JSON.stringify(version) ?? 'nothing'}`);
  }
  return { version };
}

function envRequest(body: unknown): Required<EnvRequest> {
  if (!isRecord(body)) throw new ApiRequestError('give the change as {"set": {"KEY": "VALUE"}, "unset": ["KEY"]}');
  const set = body.set ?? {};
  const unset = body.unset ?? [];
  if (!isRecord(set)) throw new ApiRequestError('"set" must be an object of KEY: "VALUE"');
  for (const [key, value] of Object.entries(set)) {
    // The value is a secret: name the key, never echo the value.
    if (typeof value !== 'string') throw new ApiRequestError(`set.${key}: the value must be a string`);
  }
  if (!Array.isArray(unset) || unset.some((k) => typeof k !== 'string')) throw new ApiRequestError('"unset" must be a list of keys');
  if (Object.keys(set).length === 0 && unset.length === 0) throw new ApiRequestError('nothing to change: give "set" or "unset"');
  return { set: set as Record<string, string>, unset: unset as string[] };
}

function addServerRequest(body: unknown): AddServerRequest {
  // No body, or {}: a server of the grid's size.
  if (body === undefined) return {};
  if (!isRecord(body)) throw new ApiRequestError('give the server as {"size": "SIZE"}, or {} for the grid\'s size');
  const size = body.size;
  if (size === undefined || size === null) return {};
  if (typeof size !== 'string' || size.trim() === '') {
    throw new ApiRequestError(`size must be a size's name (e.g. "s-1vcpu-1gb"), got ${JSON.stringify(size)}`);
  }
  return { size };
}

function addKeyRequest(body: unknown): Required<AddKeyRequest> {
  if (!isRecord(body) || typeof body.key !== 'string' || body.key.trim() === '') {
    throw new ApiRequestError('give the key as {"key": "ssh-ed25519 AAAA… you@host", "source": "FILE"}');
  }
  const key = body.key;
  const source = body.source ?? 'the key';
  if (typeof source !== 'string') throw new ApiRequestError('"source" must be a string: the name of the key\'s file, for messages');
  // It is only put in messages: one line, of a sane length.
  const clean = source.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, 200) || 'the key';
  return { key, source: clean };
}

function addCertRequest(body: unknown): AddCertRequest {
  const pem = (value: unknown) => typeof value === 'string' && value.includes('-----BEGIN ');
  if (!isRecord(body) || !pem(body.cert) || !pem(body.key)) {
    throw new ApiRequestError('give the certificate and its key as {"cert": "-----BEGIN CERTIFICATE-----…", "key": "-----BEGIN PRIVATE KEY-----…"} (PEM)');
  }
  return { cert: body.cert as string, key: body.key as string };
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new ApiRequestError(`${name} must be true or false`);
}

function tailOf(value: unknown): number | undefined {
  if (value === undefined || value === '' || value === 'all') return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new ApiRequestError(`tail must be a number of lines, got ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * Runs a long operation, streaming its progress as NDJSON, and ends with its `result` (a
 * release, or a server) or `failed`. The operation goes on if the caller goes away: it is a
 * task of HQ's, not of the connection.
 */
async function operate<R>(res: Response, log: (line: string) => void, run: (progress: Progress) => Promise<R>): Promise<void> {
  const answer = new NdjsonAnswer(res);
  const progress: Progress = {
    step: (text) => answer.write({ step: text }),
    info: (text) => answer.write({ info: text }),
    error: (text) => answer.write({ error: text }),
  };
  let result: R;
  try {
    result = await run(progress);
  } catch (err) {
    if (!answer.streaming) throw err;
    const status = statusOf(err);
    if (status === 500) log(`API ${res.req.method} ${res.req.originalUrl.split('?')[0]}: ${(err as Error)?.stack ?? String(err)}`);
    answer.write({ failed: bodyOf(err, status).error });
    answer.end();
    return;
  }
  answer.write({ result });
  answer.end();
}

/**
 * `top` as server-sent events: one view at once (an unknown stack is a plain 404 before
 * anything is sent), then one each `everyMs` until the caller goes away.
 */
async function topEvents(control: HqControl, stack: string, res: Response, everyMs: number): Promise<void> {
  const first = await control.top(stack);
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.socket?.setNoDelay(true);
  let closed = false;
  let wake: () => void = () => undefined;
  res.on('close', () => {
    closed = true;
    wake();
  });
  const send = (event: string, body: unknown) => {
    if (!res.writableEnded && !res.destroyed) res.write(`event: ${event}\ndata: ${JSON.stringify(body)}\n\n`);
  };
  send('top', { top: first } satisfies TopBody);
  while (!closed) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, everyMs);
      wake = () => { clearTimeout(timer); resolve(); };
    });
    if (closed) break;
    try {
      send('top', { top: await control.top(stack) } satisfies TopBody);
    } catch (err) {
      send('failed', bodyOf(err, statusOf(err)));
      break;
    }
  }
  if (!res.writableEnded) res.end();
}

/**
 * The API's routes over an HqControl (the mapping is one to one), and `POST /keys`, which
 * authorises a key in HQ's own `home` (`keys/authorized_keys`, read on every login). Callers
 * show the token, or hold a dashboard session (`sessions`).
 */
export function apiRoutes(
  control: HqControl, token: string, log: (line: string) => void, home: HomeLayout, sessions: Sessions, topEveryMs = TOP_EVENTS_EVERY_MS,
  certs?: CertificateStore,
): express.Router {
  const api = express.Router();
  api.get('/health', (_req, res) => {
    res.json({ ok: true, service: 'quarry-hq' } satisfies HealthBody);
  });
  api.use(requireCaller(token, sessions));
  api.use(express.json({ limit: '1mb' }));

  api.get('/stacks', handle(async (_req, res) => {
    res.json({ stacks: await control.stacks() });
  }));
  api.get('/ps', handle(async (req, res) => {
    const stack = req.query.stack === undefined || req.query.stack === '' ? undefined : stackFromPath(String(req.query.stack));
    res.json({ containers: await control.ps(stack) });
  }));
  api.get('/stacks/:stack/top', handle(async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ top: await control.top(stackOf(req)) } satisfies TopBody);
  }));
  api.get('/stacks/:stack/top/events', handle(async (req, res) => {
    await topEvents(control, stackOf(req), res, topEveryMs);
  }));
  api.post('/stacks/:stack/scale', handle(async (req, res) => {
    const stack = stackOf(req);
    const { changes } = scaleRequest(req.body);
    await operate(res, log, (progress) => control.scale(stack, changes, progress));
  }));
  api.get('/stacks/:stack/logs', handle(async (req, res) => {
    const stack = stackOf(req);
    const name = req.query.name === undefined || req.query.name === '' ? undefined : String(req.query.name);
    const options = { follow: flag(req.query.follow, 'follow'), tail: tailOf(req.query.tail) };
    // Following ends when the caller goes away.
    const stop = new AbortController();
    res.on('close', () => stop.abort());
    const answer = new NdjsonAnswer(res);
    try {
      await control.logs(stack, name, options, (line) => answer.write(line), stop.signal);
    } catch (err) {
      if (!answer.streaming) throw err;
      const status = statusOf(err);
      if (status === 500) log(`API ${req.method} ${req.originalUrl.split('?')[0]}: ${(err as Error)?.stack ?? String(err)}`);
      answer.write({ failed: bodyOf(err, status).error });
    }
    answer.end();
  }));
  api.get('/stacks/:stack/releases', handle(async (req, res) => {
    res.json({ releases: await control.releases(stackOf(req)) });
  }));
  api.post('/stacks/:stack/rollback', handle(async (req, res) => {
    const stack = stackOf(req);
    const { version } = rollbackRequest(req.body);
    await operate(res, log, (progress) => control.rollback(stack, version, progress));
  }));
  api.get('/stacks/:stack/env', handle(async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ env: await control.env(stackOf(req)) });
  }));
  api.post('/stacks/:stack/env', handle(async (req, res) => {
    const stack = stackOf(req);
    const { set, unset } = envRequest(req.body);
    await operate(res, log, (progress) => control.setEnv(stack, set, unset, progress));
  }));
  api.post('/keys', handle(async (req, res) => {
    const { key, source } = addKeyRequest(req.body);
    // A key that is no public key (or a private one) is a PublicKeyError: a 400 with its message.
    const result = addAuthorizedKey(home, key, source);
    if (result.added) log(`authorised key ${result.fingerprint} to push (through the API, from ${JSON.stringify(source)})`);
    res.status(result.added ? 201 : 200).json({ fingerprint: result.fingerprint, added: result.added, comment: result.comment } satisfies AddKeyBody);
  }));
  api.get('/servers', handle(async (_req, res) => {
    res.json({ servers: await control.servers() } satisfies ServersBody);
  }));
  api.post('/servers', handle(async (req, res) => {
    const { size } = addServerRequest(req.body);
    await operate(res, log, (progress) => control.addServer(size, progress));
  }));
  api.delete('/servers/:id', handle(async (req, res) => {
    const id = String(req.params.id);
    await operate(res, log, (progress) => control.removeServer(id, progress));
  }));
  api.post('/servers/:id/drain', handle(async (req, res) => {
    const id = String(req.params.id);
    const remove = (req.body as { remove?: unknown } | undefined)?.remove === true;
    await operate(res, log, (progress) => control.drainServer(id, remove, progress));
  }));
  api.post('/servers/:id/undrain', handle(async (req, res) => {
    const id = String(req.params.id);
    await operate(res, log, (progress) => control.undrainServer(id, progress));
  }));
  const certStore = (): CertificateStore => {
    if (!certs) throw new ApiRouteNotFoundError('this HQ keeps no certificates');
    return certs;
  };
  api.get('/certs', handle(async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ certs: await certStore().list() } satisfies CertsBody);
  }));
  api.put('/certs/:domain', handle(async (req, res) => {
    const { cert, key } = addCertRequest(req.body);
    const before = await certStore().get(String(req.params.domain));
    const info = await certStore().add(String(req.params.domain), cert, key, 'manual');
    // Domain, issuer and expiry only: the key is never logged.
    log(`certificate for ${info.domain} ${before ? 'replaced' : 'added'} (issuer ${info.issuer}, expires ${info.notAfter})`);
    res.status(before ? 200 : 201).json({ cert: info } satisfies CertBody);
  }));
  api.delete('/certs/:domain', handle(async (req, res) => {
    const info = await certStore().remove(String(req.params.domain));
    log(`certificate for ${info.domain} removed`);
    res.json({ cert: info } satisfies CertBody);
  }));
  api.get('/grid', handle(async (_req, res) => {
    res.json({ grid: await control.grid() } satisfies GridBody);
  }));
  api.get('/grid/:stack', handle(async (req, res) => {
    res.json({ grid: await control.grid(stackOf(req)) } satisfies GridBody);
  }));
  api.use((req, _res, next) => next(new ApiRouteNotFoundError(`HQ's API has no ${req.method} ${req.baseUrl}${req.path}`)));
  return api;
}
