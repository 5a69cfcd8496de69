import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import AjvModule, { type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

// ajv and ajv-formats are CommonJS with a default export.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

/**
 * DigitalOcean's OpenAPI description, as the simulator checks against it: YAML files with
 * relative `$ref`s (`../../responses/x.yml`, `models/x.yml#/y`), resolved here into plain
 * JSON schemas, and checked with ajv (OpenAPI 3.0's `nullable` is ajv's own keyword;
 * `example`, `x-…` and `discriminator` are annotations and ignored).
 *
 * The files are a fixture in the repo (fixtures/digitalocean-openapi/, with its LICENSE and
 * SOURCE.md): the subset of the upstream description that these operations reach, unchanged.
 */
export const SPEC = join(import.meta.dirname, 'fixtures/digitalocean-openapi/specification');

const files = new Map<string, unknown>();
function load(file: string): unknown {
  let document = files.get(file);
  if (document === undefined) {
    document = parse(readFileSync(file, 'utf8')) as unknown;
    files.set(file, document);
  }
  return document;
}

function pointer(document: unknown, path: string): unknown {
  let node = document;
  for (const raw of path.split('/').filter(Boolean)) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown> | undefined)?.[part];
    if (node === undefined) throw new Error(`$ref pointer #${path} not found`);
  }
  return node;
}

// Code samples in other languages are not part of the subset; nothing here needs them.
const SKIPPED = new Set(['x-codeSamples']);

/** `node` from `file` with every `$ref` replaced by what it points to, recursively. */
export function resolveRefs(node: unknown, file: string, trail: readonly string[] = []): unknown {
  if (Array.isArray(node)) return node.map((item) => resolveRefs(item, file, trail));
  if (typeof node !== 'object' || node === null) return node;
  const record = node as Record<string, unknown>;
  if (typeof record.$ref === 'string') {
    const [target = '', fragment = ''] = record.$ref.split('#');
    const targetFile = target === '' ? file : resolve(dirname(file), target);
    const key = `${targetFile}#${fragment}`;
    if (trail.includes(key)) throw new Error(`$ref cycle through ${key}`);
    return resolveRefs(pointer(load(targetFile), fragment), targetFile, [...trail, key]);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    if (!SKIPPED.has(k)) out[k] = resolveRefs(v, file, trail);
  }
  return out;
}

interface Parameter { in: 'path' | 'query' | 'header'; name: string; required?: boolean; schema: object }
interface MediaType { schema?: object; examples?: Record<string, { value?: unknown }> }
interface ResponseSpec { headers?: Record<string, { schema: object; required?: boolean }>; content?: Record<string, MediaType> }
interface OperationSpec {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, MediaType> };
  responses: Record<string, ResponseSpec>;
}

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);

function compile(schema: object): ValidateFunction {
  return ajv.compile(schema);
}

function problems(validate: ValidateFunction, where: string): string[] {
  return (validate.errors ?? []).map((e) => `${where}${e.instancePath || ''} ${e.message ?? 'is invalid'}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`);
}

/** One operation of the spec, loaded from its file, ready to check requests and responses. */
export class Operation {
  readonly id: string;
  readonly spec: OperationSpec;
  private readonly validators = new Map<object, ValidateFunction>();

  constructor(relativeFile: string) {
    const file = join(SPEC, relativeFile);
    this.spec = resolveRefs(load(file), file) as OperationSpec;
    this.id = this.spec.operationId;
  }

  private validator(schema: object): ValidateFunction {
    let validate = this.validators.get(schema);
    if (!validate) {
      validate = compile(schema);
      this.validators.set(schema, validate);
    }
    return validate;
  }

  /** What is wrong with a request: parameters (path, query) and the JSON body. */
  checkRequest(request: { path: Record<string, string>; query: URLSearchParams; body: unknown; contentType: string | undefined }): string[] {
    const found: string[] = [];
    const parameters = this.spec.parameters ?? [];
    for (const name of new Set(request.query.keys())) {
      if (!parameters.some((p) => p.in === 'query' && p.name === name)) found.push(`query parameter "${name}" is not in the spec of ${this.id}`);
    }
    for (const parameter of parameters) {
      if (parameter.in === 'header') continue;
      const raw = parameter.in === 'path' ? request.path[parameter.name] : request.query.get(parameter.name) ?? undefined;
      if (raw === undefined) {
        if (parameter.required) found.push(`${parameter.in} parameter "${parameter.name}" is required`);
        continue;
      }
      const type = (parameter.schema as { type?: string }).type;
      const value = (type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
      const validate = this.validator(parameter.schema);
      if (!validate(value)) found.push(...problems(validate, `${parameter.in} parameter "${parameter.name}"`));
    }
    const body = this.spec.requestBody;
    if (body) {
      const media = body.content['application/json'];
      if (request.body === undefined) {
        if (body.required !== false) found.push('a JSON request body is required');
      } else {
        if (!request.contentType?.startsWith('application/json')) found.push(`request content-type must be application/json, got ${request.contentType ?? 'none'}`);
        if (media?.schema) {
          const validate = this.validator(media.schema);
          if (!validate(request.body)) found.push(...problems(validate, 'request body'));
        }
      }
    } else if (request.body !== undefined) {
      found.push(`${this.id} takes no request body`);
    }
    return found;
  }

  /** What is wrong with a response: a status the operation has (or `default`), its declared headers and its JSON body. */
  checkResponse(status: number, headers: Record<string, string | undefined>, body: unknown): string[] {
    const spec = this.spec.responses[String(status)] ?? this.spec.responses.default;
    if (!spec) return [`status ${status} is not a response of ${this.id}`];
    const found: string[] = [];
    for (const [name, header] of Object.entries(spec.headers ?? {})) {
      const raw = headers[name.toLowerCase()];
      if (raw === undefined) {
        found.push(`response header ${name} is missing (declared for ${status})`);
        continue;
      }
      const type = (header.schema as { type?: string }).type;
      const value = type === 'integer' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      const validate = this.validator(header.schema);
      if (!validate(value)) found.push(...problems(validate, `response header ${name}`));
    }
    const media = spec.content?.['application/json'];
    if (media?.schema) {
      const validate = this.validator(media.schema);
      if (!validate(body)) found.push(...problems(validate, `response ${status} body`));
    } else if (body !== undefined) {
      found.push(`response ${status} of ${this.id} has no body in the spec`);
    }
    return found;
  }

  /** The spec's named example of a response body. */
  example(status: string, name: string): unknown {
    return this.spec.responses[status]?.content?.['application/json']?.examples?.[name]?.value;
  }
}
