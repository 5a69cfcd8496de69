/**
 * A small schema language for daemon configs: each key names a field that parses an unknown
 * JSON value into a typed one or says what is wrong with it. Unknown keys are faults too, so
 * a misspelt setting never passes silently for its default.
 */

/** What a field found wrong; the validator turns it into a ConfigInvalidError with the key. */
export class FieldProblem extends Error {
  /** The key below the field's own, for faults inside nested objects and lists. */
  readonly subkey: string | undefined;
  constructor(message: string, subkey?: string) {
    super(message);
    this.subkey = subkey;
  }
}

export interface Field<T> {
  /** Parses a present value, throwing FieldProblem when it is wrong. */
  parse(value: unknown): T;
  /** The value of an absent key; a field without one is required. */
  readonly fallback?: () => T;
  /** How the field reads in a message: "an integer from 1 to 65535". */
  readonly expects: string;
}

export type Schema = Record<string, Field<unknown>>;
export type ConfigOf<S extends Schema> = { [K in keyof S]: S[K] extends Field<infer T> ? T : never };

function shown(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function wrong(expects: string, value: unknown): FieldProblem {
  return new FieldProblem(`must be ${expects}, got ${shown(value)}`);
}

function withDefault<T>(field: Omit<Field<T>, 'fallback'>, fallback: T | undefined): Field<T> {
  return fallback === undefined ? field : { ...field, fallback: () => fallback };
}

export function string(options: { default?: string; nonEmpty?: boolean } = {}): Field<string> {
  const expects = options.nonEmpty ? 'a non-empty string' : 'a string';
  return withDefault({
    expects,
    parse(value) {
      if (typeof value !== 'string' || (options.nonEmpty && value === '')) throw wrong(expects, value);
      return value;
    },
  }, options.default);
}

export function integer(options: { default?: number; min?: number; max?: number } = {}): Field<number> {
  const min = options.min ?? Number.MIN_SAFE_INTEGER;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  const expects = options.min !== undefined && options.max !== undefined
    ? `an integer from ${min} to ${max}`
    : options.min !== undefined ? `an integer of at least ${min}` : 'an integer';
  return withDefault({
    expects,
    parse(value) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        throw wrong(expects, value);
      }
      return value;
    },
  }, options.default);
}

/** A TCP port to listen on; 0 picks a free one. */
export function port(options: { default?: number } = {}): Field<number> {
  return integer({ ...options, min: 0, max: 65535 });
}

export function boolean(options: { default?: boolean } = {}): Field<boolean> {
  return withDefault({
    expects: 'true or false',
    parse(value) {
      if (typeof value !== 'boolean') throw wrong('true or false', value);
      return value;
    },
  }, options.default);
}

/** An absolute URL whose scheme is one of `protocols` (e.g. `['http:', 'https:']`). */
export function url(options: { default?: string; protocols: string[] }): Field<string> {
  const expects = `a URL (${options.protocols.map((p) => p.replace(/:$/, '')).join(' or ')})`;
  return withDefault({
    expects,
    parse(value) {
      if (typeof value !== 'string') throw wrong(expects, value);
      let parsed: URL;
      try {
        parsed = new URL(value);
      } catch {
        throw wrong(expects, value);
      }
      if (!options.protocols.includes(parsed.protocol)) throw wrong(expects, value);
      return value;
    },
  }, options.default);
}

/** A list; a single value stands for a list of one. */
export function list<T>(item: Field<T>, options: { default?: T[]; nonEmpty?: boolean } = {}): Field<T[]> {
  const expects = `${options.nonEmpty ? 'a non-empty ' : 'a '}list of ${item.expects.replace(/^an? /, '')}s`;
  return withDefault({
    expects,
    parse(value) {
      const items = Array.isArray(value) ? value : [value];
      if (options.nonEmpty && items.length === 0) throw wrong(expects, value);
      return items.map((element, index) => {
        try {
          return item.parse(element);
        } catch (err) {
          if (err instanceof FieldProblem) throw new FieldProblem(err.message, joinKey(String(index), err.subkey));
          throw err;
        }
      });
    },
  }, options.default);
}

/** A nested object with its own schema; absent, it is that schema's defaults. */
export function object<S extends Schema>(schema: S): Field<ConfigOf<S>> {
  const field: Field<ConfigOf<S>> = {
    expects: 'an object',
    parse(value) {
      return parseObject(schema, value);
    },
  };
  const everyKeyHasDefault = Object.values(schema).every((f) => f.fallback !== undefined);
  return everyKeyHasDefault ? { ...field, fallback: () => parseObject(schema, {}) } : field;
}

/** A field that may be absent; then its value is undefined. */
export function optional<T>(field: Field<T>): Field<T | undefined> {
  return { expects: field.expects, parse: (value) => field.parse(value), fallback: () => undefined };
}

function joinKey(key: string, subkey: string | undefined): string {
  return subkey === undefined ? key : `${key}.${subkey}`;
}

/** Parses a JSON object against a schema; throws FieldProblem with the dotted key at fault. */
export function parseObject<S extends Schema>(schema: S, value: unknown): ConfigOf<S> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw wrong('an object', value);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(schema, key)) {
      throw new FieldProblem(`is not a known setting (known: ${Object.keys(schema).join(', ')})`, key);
    }
  }
  const result: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema)) {
    const present = record[key];
    if (present === undefined) {
      if (!field.fallback) throw new FieldProblem(`is required: ${field.expects}`, key);
      result[key] = field.fallback();
      continue;
    }
    try {
      result[key] = field.parse(present);
    } catch (err) {
      if (err instanceof FieldProblem) throw new FieldProblem(err.message, joinKey(key, err.subkey));
      throw err;
    }
  }
  return result as ConfigOf<S>;
}
