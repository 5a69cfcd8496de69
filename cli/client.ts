import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { QuarryError, UsageError } from '../errors/index.js';
import { HomeLayout, quarryHome } from '../home/index.js';
import { terminalSafe } from '../launcher/index.js';
import { type AddCertRequest, type AddKeyBody, type CertBody, type CertificateInfo, type CertsBody, type ApiErrorBody, type EnvRequest, type GridView, type HqInfo, type LogLine, type OperationLine, type PsRow, type ReleaseInfo, type ServerRow, type TopBody, type TopView } from '../hq/index.js';
import type { CommandIO } from './command.js';

/** A progress line of a long operation (`{step}`, `{info}`, `{error}`), as printProgress prints it. */
export type ProgressLine = Exclude<OperationLine, { result: unknown } | { failed: unknown }>;

/** HQ does not answer at its URL (not running, wrong address, a stale hq.json). */
export class HqUnreachableError extends QuarryError {}

/** HQ wants a token, or refused the one given. */
export class HqUnauthorizedError extends QuarryError {}

/** HQ answered with an error (an unknown stack, a bad request, a failed operation). */
export class HqRequestError extends QuarryError {
  constructor(message: string, readonly status: number, readonly errorName: string) {
    super(message);
  }
}


/** Which HQ a command talks to, and how it was found (said in errors). */
export interface HqTarget {
  url: string;
  /** `--hq`, `QUARRY_HQ`, or the path of the local hq.json. */
  foundBy: string;
  token: string | undefined;
  /** `--token`, `--token-file FILE`, `QUARRY_TOKEN`, or the path of the local token file. */
  tokenFrom: string | undefined;
}

/** The options every command that talks to HQ takes, for node:util's parseArgs. */
export const HQ_OPTIONS = {
  hq: { type: 'string' },
  'token-file': { type: 'string' },
  /** Still taken, with a warning: a process's arguments are there for every user of the machine to read (`ps`). */
  token: { type: 'string' },
} as const;

/** The flags of HQ_OPTIONS, as parseArgs gives them. */
export interface HqFlags {
  hq?: string;
  token?: string;
  'token-file'?: string;
}

/** What `--token` costs, said on stderr each time it is used (docs/hq.md, "How the command line finds HQ"). */
export const TOKEN_FLAG_WARNING = 'quarry: warning: --token shows in the process list, where every user of this machine can read it; ' +
  "give HQ's token with QUARRY_TOKEN or --token-file FILE instead (on HQ's own machine, as HQ's user, its token file is read without either)\n";

/**
 * Finds HQ: `--hq URL`, else `QUARRY_HQ`, else the HQ running on this machine, from
 * `$QUARRY_HOME/hq.json`. The token: `--token-file FILE` (the file holds the token), else
 * `QUARRY_TOKEN`, else, only when talking to that local HQ, its `$QUARRY_HOME/token` if this
 * user may read it (as docker's client uses the local socket): a local token is never sent to
 * another HQ. `--token TOKEN` comes first and still works, with a warning on stderr: a
 * process's arguments are in the process list for every user of the machine to read.
 */
export function findHq(flags: HqFlags, io: Pick<CommandIO, 'env' | 'cwd' | 'stderr'>): HqTarget {
  const found = namedHq(flags, io);
  if (found) return found;
  const home = new HomeLayout(quarryHome(io.env));
  throw new HqUnreachableError(`no HQ to talk to: none runs with home ${home.root} (no ${home.hqInfo}); ` +
    `start one with 'quarry hq', or name one with --hq URL or QUARRY_HQ`);
}

/**
 * The HQ that `--hq`, `QUARRY_HQ` or the local `$QUARRY_HOME/hq.json` names, as `findHq`
 * finds it; undefined when none of them names one (a command that can do without HQ, such
 * as `quarry keys add`, then works on the local home).
 */
export function namedHq(flags: HqFlags, io: Pick<CommandIO, 'env' | 'cwd' | 'stderr'>): HqTarget | undefined {
  const { env } = io;
  const home = new HomeLayout(quarryHome(env));
  const local = readLocalInfo(home);
  let url: string;
  let foundBy: string;
  if (flags.hq !== undefined && flags.hq !== '') [url, foundBy] = [normalUrl(flags.hq, '--hq'), '--hq'];
  else if (env.QUARRY_HQ) [url, foundBy] = [normalUrl(env.QUARRY_HQ, 'QUARRY_HQ'), 'QUARRY_HQ'];
  else if (local) [url, foundBy] = [normalUrl(local.api, home.hqInfo), home.hqInfo];
  else return undefined;

  if (flags.token !== undefined && flags.token !== '') {
    io.stderr.write(TOKEN_FLAG_WARNING);
    return { url, foundBy, token: flags.token, tokenFrom: '--token' };
  }
  const file = flags['token-file'];
  if (file !== undefined && file !== '') return { url, foundBy, token: readTokenFile(resolve(io.cwd, file), file), tokenFrom: `--token-file ${file}` };
  if (env.QUARRY_TOKEN) return { url, foundBy, token: env.QUARRY_TOKEN, tokenFrom: 'QUARRY_TOKEN' };
  if (local && normalUrl(local.api, home.hqInfo) === url) {
    try {
      const token = readFileSync(home.token, 'utf8').trim();
      if (token !== '') return { url, foundBy, token, tokenFrom: home.token };
    } catch {
      // not readable by this user: go without, and say how on a 401
    }
  }
  return { url, foundBy, token: undefined, tokenFrom: undefined };
}

/** The token in a file named by `--token-file` (its first line; HQ's own token file will do). */
function readTokenFile(path: string, given: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new HqUnauthorizedError(`--token-file ${given}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.split('\n')[0]!.trim();
  if (token === '') throw new HqUnauthorizedError(`--token-file ${given}: it is empty; put HQ's token in it (HQ's is the file 'token' in its home)`);
  return token;
}

function readLocalInfo(home: HomeLayout): HqInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(home.hqInfo, 'utf8')) as HqInfo;
    return typeof info.api === 'string' ? info : undefined;
  } catch {
    return undefined;
  }
}

/** `http://host:port` from what a user typed: a URL, or `host:port` (http assumed). */
function normalUrl(text: string, from: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new HqUnreachableError(`${from}: '${text}' is not a URL of HQ's API (e.g. http://127.0.0.1:7070)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HqUnreachableError(`${from}: '${text}' is not an http:// or https:// URL`);
  }
  return url.href.replace(/\/+$/, '');
}

/** The typed caller of HQ's HTTP API (hq/api/): one method per route. */
export class HqClient {
  constructor(readonly target: HqTarget) {}

  async stacks(): Promise<string[]> {
    return (await this.json<{ stacks: string[] }>('GET', '/v1/stacks')).stacks;
  }

  async ps(stack?: string): Promise<PsRow[]> {
    const query = stack === undefined ? '' : `?stack=${encodeURIComponent(stack)}`;
    return (await this.json<{ containers: PsRow[] }>('GET', `/v1/ps${query}`)).containers;
  }

  /** One snapshot of what flows through a stack: its elements' instances, rates, busy time, and its connections' queues. */
  async top(stack: string): Promise<TopView> {
    return (await this.json<TopBody>('GET', `/v1/stacks/${encodeURIComponent(stack)}/top`)).top;
  }

  async releases(stack: string): Promise<ReleaseInfo[]> {
    return (await this.json<{ releases: ReleaseInfo[] }>('GET', `/v1/stacks/${encodeURIComponent(stack)}/releases`)).releases;
  }

  async env(stack: string): Promise<Record<string, string>> {
    return (await this.json<{ env: Record<string, string> }>('GET', `/v1/stacks/${encodeURIComponent(stack)}/env`)).env;
  }

  /** Authorises a public key (its text) to push, in HQ's own home; `source` names it in HQ's messages. */
  async addKey(key: string, source: string): Promise<AddKeyBody> {
    const res = await this.send('POST', '/v1/keys', { key, source }, true);
    return JSON.parse(await text(res)) as AddKeyBody;
  }

  /** The domains' certificates HQ keeps (never a key). */
  async certs(): Promise<CertificateInfo[]> {
    return (await this.json<CertsBody>('GET', '/v1/certs')).certs;
  }

  /** Keeps a certificate and key (PEM text, sent in the body only) for a domain, for every router. */
  async addCert(domain: string, cert: string, key: string): Promise<CertificateInfo> {
    const res = await this.send('PUT', `/v1/certs/${encodeURIComponent(domain)}`, { cert, key } satisfies AddCertRequest, true);
    return (JSON.parse(await text(res)) as CertBody).cert;
  }

  async removeCert(domain: string): Promise<CertificateInfo> {
    return (await this.json<CertBody>('DELETE', `/v1/certs/${encodeURIComponent(domain)}`)).cert;
  }

  async servers(): Promise<ServerRow[]> {
    return (await this.json<{ servers: ServerRow[] }>('GET', '/v1/servers')).servers;
  }

  async grid(stack?: string): Promise<GridView> {
    const path = stack === undefined ? '/v1/grid' : `/v1/grid/${encodeURIComponent(stack)}`;
    return (await this.json<{ grid: GridView }>('GET', path)).grid;
  }

  scale(stack: string, changes: Record<string, number>, onProgress: (line: ProgressLine) => void): Promise<ReleaseInfo> {
    return this.operation('POST', `/v1/stacks/${encodeURIComponent(stack)}/scale`, { changes }, onProgress);
  }

  rollback(stack: string, version: number, onProgress: (line: ProgressLine) => void): Promise<ReleaseInfo> {
    return this.operation('POST', `/v1/stacks/${encodeURIComponent(stack)}/rollback`, { version }, onProgress);
  }

  setEnv(stack: string, change: EnvRequest, onProgress: (line: ProgressLine) => void): Promise<ReleaseInfo> {
    return this.operation('POST', `/v1/stacks/${encodeURIComponent(stack)}/env`, change, onProgress);
  }

  /** Adds a server of `size` (the grid's size when undefined), once it answers. */
  addServer(size: string | undefined, onProgress: (line: ProgressLine) => void): Promise<ServerRow> {
    return this.operation('POST', '/v1/servers', size === undefined ? {} : { size }, onProgress, 'see quarry servers');
  }

  /** Removes an empty server. */
  removeServer(id: string, onProgress: (line: ProgressLine) => void): Promise<ServerRow> {
    return this.operation('DELETE', `/v1/servers/${encodeURIComponent(id)}`, undefined, onProgress, 'see quarry servers');
  }

  /** Drains a server (its containers move elsewhere); with `remove`, then removes it. */
  drainServer(id: string, remove: boolean, onProgress: (line: ProgressLine) => void): Promise<ServerRow> {
    return this.operation('POST', `/v1/servers/${encodeURIComponent(id)}/drain`, { remove }, onProgress, 'see quarry servers');
  }

  /** Puts a drained server back into use. */
  undrainServer(id: string, onProgress: (line: ProgressLine) => void): Promise<ServerRow> {
    return this.operation('POST', `/v1/servers/${encodeURIComponent(id)}/undrain`, {}, onProgress, 'see quarry servers');
  }

  /** Streams containers' output; with `follow`, until HQ ends it or the caller stops. */
  async logs(stack: string, name: string | undefined, options: { follow: boolean; tail?: number }, onLine: (line: LogLine) => void): Promise<void> {
    const query = new URLSearchParams();
    if (name !== undefined) query.set('name', name);
    if (options.follow) query.set('follow', '1');
    if (options.tail !== undefined) query.set('tail', String(options.tail));
    const res = await this.send('GET', `/v1/stacks/${encodeURIComponent(stack)}/logs?${query}`, undefined, !options.follow);
    await eachLine(res, (value) => {
      const failed = (value as { failed?: { name: string; message: string } }).failed;
      if (failed) throw new HqRequestError(failed.message, 200, failed.name);
      onLine(value as LogLine);
    });
  }

  private async json<T>(method: string, path: string): Promise<T> {
    const res = await this.send(method, path, undefined, true);
    return JSON.parse(await text(res)) as T;
  }

  /** A long operation: progress lines as they come, then its result (a release, a server) or its failure. */
  private async operation<R>(
    method: string, path: string, body: unknown, onProgress: (line: ProgressLine) => void, seeAfter = 'see quarry releases',
  ): Promise<R> {
    const res = await this.send(method, path, body, false);
    let result: { value: R } | undefined;
    await eachLine(res, (value) => {
      const line = value as OperationLine<R>;
      if ('failed' in line) throw new HqRequestError(line.failed.message, 200, line.failed.name);
      if ('result' in line) result = { value: line.result };
      else onProgress(line);
    });
    if (!result) throw new HqRequestError(`HQ at ${this.target.url} closed the connection before the change finished; it goes on in HQ: ${seeAfter}`, 0, 'Incomplete');
    return result.value;
  }

  /** Sends a request; resolves with a 2xx answer, throws the typed error of any other. */
  private send(method: string, path: string, body: unknown, idleLimit: boolean): Promise<IncomingMessage> {
    const { url, token } = this.target;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json, application/x-ndjson' };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { method, headers }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        text(res).then((raw) => reject(this.errorOf(status, raw)), reject);
      });
      // Plain reads get an answer at once; operations and followed logs may be quiet a while.
      if (idleLimit) req.setTimeout(60_000, () => req.destroy(Object.assign(new Error('no answer within 60 s'), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(new HqUnreachableError(`cannot reach HQ at ${url}: ${err.code ?? err.message}; is 'quarry hq' running there? ` +
          `(HQ found by ${this.target.foundBy})`, { cause: err }));
      });
      req.end(payload);
    });
  }

  private errorOf(status: number, raw: string): QuarryError {
    let error: ApiErrorBody['error'] | undefined;
    try {
      error = (JSON.parse(raw) as ApiErrorBody).error;
    } catch {
      error = undefined;
    }
    const { url, tokenFrom } = this.target;
    if (status === 401) {
      const how = `HQ's token is in the file 'token' in its home (e.g. ~/.quarry/token or /home/quarry/token on HQ's machine); ` +
        `give it with QUARRY_TOKEN or --token-file FILE`;
      return new HqUnauthorizedError(tokenFrom === undefined
        ? `HQ at ${url} wants its API token. ${how}`
        : `HQ at ${url} refused the API token from ${tokenFrom}. ${how}`);
    }
    if (error && typeof error.message === 'string') return new HqRequestError(error.message, status, error.name);
    return new HqRequestError(`HQ at ${url} answered ${status}${raw ? `: ${raw.slice(0, 200)}` : ''}`, status, 'HttpError');
  }
}

/** Reads a whole answer. */
function text(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => { body += chunk; });
    res.on('end', () => resolve(body));
    res.on('error', reject);
  });
}

/** Calls `each` with every NDJSON value of an answer, as it arrives. */
function eachLine(res: IncomingMessage, each: (value: unknown) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      res.destroy();
      reject(err);
    };
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (failed) return;
      buffer += chunk;
      let at: number;
      while ((at = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, at).trim();
        buffer = buffer.slice(at + 1);
        if (line === '') continue;
        try {
          each(JSON.parse(line));
        } catch (err) {
          fail(err);
          return;
        }
      }
    });
    res.on('end', () => {
      if (failed) return;
      if (buffer.trim() !== '') {
        try {
          each(JSON.parse(buffer));
        } catch (err) {
          fail(err);
          return;
        }
      }
      resolve();
    });
    res.on('error', fail);
    res.on('aborted', () => fail(new HqUnreachableError('HQ closed the connection midway')));
  });
}

/** A client for a command's `--hq` and token (`--token-file`, their variables, or the local HQ). */
export function clientFor(values: HqFlags, io: CommandIO): HqClient {
  return new HqClient(findHq(values, io));
}

/** Writes a long operation's progress as HQ's push does: steps, indented details, errors. */
export function printProgress(io: CommandIO, toStderr: boolean): (line: ProgressLine) => void {
  const out = toStderr ? io.stderr : io.stdout;
  return (line) => {
    if ('step' in line) out.write(indent(line.step, '-----> '));
    else if ('info' in line) out.write(indent(line.info, '       '));
    else if ('error' in line) io.stderr.write(indent(line.error, ''));
  };
}

function indent(text: string, prefix: string): string {
  return terminalSafe(text).split('\n').map((l) => `${prefix}${l}\n`).join('');
}

/** Columns aligned like `docker ps`: each as wide as its widest cell, two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `${l}\n`).join('');
}

/** node:util's parseArgs with HQ's options added, its faults as usage errors. */
export function parseHqArgs<O extends Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...HQ_OPTIONS, ...options } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A release in one line, as commands print it after a change. */
export function releasedLine(release: ReleaseInfo): string {
  const urls = release.urls.length > 0 ? `; ${release.urls.join(' ')}` : '';
  return `${release.stack} v${release.version} released: ${release.description}${urls}\n`;
}
