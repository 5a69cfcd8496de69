import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigInvalidError, ConfigSyntaxError, ConfigUnreadableError } from './errors.js';
import { FieldProblem, parseObject, type ConfigOf, type Schema } from './schema.js';

export interface LoadOptions {
  /** Resolves a bare path given instead of a URL; default: the process's working directory. */
  cwd?: string;
  /** How long an http(s) fetch may take, in milliseconds; default 10 s. */
  timeoutMs?: number;
}

/**
 * The URL a `--config` argument stands for: `file://`, `http://` and `https://` URLs as they
 * are; a bare path (absolute, or relative to `cwd`) as a `file://` URL.
 */
export function configUrl(location: string, cwd: string = process.cwd()): URL {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    try {
      return new URL(location);
    } catch (err) {
      throw new ConfigUnreadableError(location, 'not a valid URL', { cause: err });
    }
  }
  return pathToFileURL(isAbsolute(location) ? location : resolve(cwd, location));
}

async function readText(url: URL, timeoutMs: number): Promise<string> {
  const shown = url.href;
  if (url.protocol === 'file:') {
    try {
      return await readFile(fileURLToPath(url), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const problem = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
      throw new ConfigUnreadableError(shown, problem, { cause: err });
    }
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const problem = (err as Error).name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : cause?.code ?? cause?.message ?? (err as Error).message;
      throw new ConfigUnreadableError(shown, problem, { cause: err });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ConfigUnreadableError(shown, `HTTP ${response.status} ${response.statusText}`.trim());
    }
    return await response.text();
  }
  throw new ConfigUnreadableError(shown, `unsupported scheme ${url.protocol} (use file://, http:// or https://)`);
}

/** Checks a parsed document against a schema; throws ConfigInvalidError naming the key. */
export function validateConfig<S extends Schema>(schema: S, document: unknown, url: string): ConfigOf<S> {
  try {
    return parseObject(schema, document);
  } catch (err) {
    if (err instanceof FieldProblem) throw new ConfigInvalidError(url, err.subkey, err.message);
    throw err;
  }
}

/**
 * Loads a daemon's config: the JSON document at `location` (a URL, or a bare path) checked
 * against `schema`; with no location, the schema's defaults. Throws a ConfigError that names
 * the URL, and the key when one is at fault.
 */
export async function loadConfig<S extends Schema>(
  schema: S,
  location: string | undefined,
  options: LoadOptions = {},
): Promise<ConfigOf<S>> {
  if (location === undefined) return validateConfig(schema, {}, '(defaults)');
  const url = configUrl(location, options.cwd);
  const text = await readText(url, options.timeoutMs ?? 10_000);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw new ConfigSyntaxError(url.href, (err as Error).message, { cause: err });
  }
  return validateConfig(schema, document, url.href);
}
