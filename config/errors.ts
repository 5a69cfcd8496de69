import { QuarryError } from '../errors/index.js';

/**
 * A daemon's configuration that cannot be used. The message names the document's URL and,
 * where one key is at fault, that key (dotted for nested keys: `admin.port`).
 */
export class ConfigError extends QuarryError {
  readonly url: string;
  readonly key: string | undefined;
  constructor(url: string, key: string | undefined, problem: string, options?: { cause?: unknown }) {
    super(`config ${url}: ${key === undefined ? '' : `key "${key}": `}${problem}`, options);
    this.url = url;
    this.key = key;
  }
}

/** The document could not be fetched or read (no such file, refused, HTTP error status). */
export class ConfigUnreadableError extends ConfigError {
  constructor(url: string, problem: string, options?: { cause?: unknown }) {
    super(url, undefined, `cannot be read: ${problem}`, options);
  }
}

/** The document was read but is not JSON. */
export class ConfigSyntaxError extends ConfigError {
  constructor(url: string, problem: string, options?: { cause?: unknown }) {
    super(url, undefined, `is not valid JSON: ${problem}`, options);
  }
}

/** The document is JSON but a key is unknown, missing, or holds a wrong value. */
export class ConfigInvalidError extends ConfigError {}
