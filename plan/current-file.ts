import { QuarryError } from '../errors/index.js';
import type { CurrentState, RunningUnit, UnitKind } from './model.js';

/** A `--current` document that is not the JSON of what runs; names the file and the key. */
export class CurrentStateError extends QuarryError {}

const KINDS: UnitKind[] = ['service', 'web', 'worker', 'element'];

/**
 * Reads the JSON of what runs: `{ "stack": "docsearch", "units": [ { "name", "kind",
 * "image", "digest", "scale", "declaredScale", "domains" } ] }`, as `quarry build --json
 * --state` writes it and HQ records it.
 */
export function parseCurrentState(text: string, source: string): CurrentState {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CurrentStateError(`${source}: not JSON: ${(err as Error).message}`);
  }
  const fail = (key: string, what: string): never => {
    throw new CurrentStateError(`${source}: '${key}' ${what}`);
  };
  if (!isObject(doc)) return fail('(top)', 'must be an object with "stack" and "units"');
  if (typeof doc.stack !== 'string') fail('stack', 'must be the stack\'s name');
  if (!Array.isArray(doc.units)) return fail('units', 'must be a list of the running units');
  const units = doc.units.map((u: unknown, i: number): RunningUnit => {
    const at = `units[${i}]`;
    if (!isObject(u)) return fail(at, 'must be an object');
    if (typeof u.name !== 'string' || u.name === '') fail(`${at}.name`, 'must be the unit\'s name');
    if (!KINDS.includes(u.kind as UnitKind)) fail(`${at}.kind`, `must be one of ${KINDS.join(', ')}`);
    if (typeof u.image !== 'string') fail(`${at}.image`, 'must be the image it runs');
    if (typeof u.digest !== 'string') fail(`${at}.digest`, 'must be the digest of its definition');
    if (!isCount(u.scale)) fail(`${at}.scale`, 'must be a whole number 0 or more');
    if (u.declaredScale !== undefined && !isCount(u.declaredScale)) fail(`${at}.declaredScale`, 'must be a whole number 0 or more');
    if (u.domains !== undefined && !(Array.isArray(u.domains) && u.domains.every((d) => typeof d === 'string'))) {
      fail(`${at}.domains`, 'must be a list of domain names');
    }
    return {
      name: u.name as string, kind: u.kind as UnitKind, image: u.image as string, digest: u.digest as string,
      scale: u.scale as number, declaredScale: (u.declaredScale as number | undefined) ?? (u.scale as number),
      domains: (u.domains as string[] | undefined) ?? [],
    };
  });
  return { stack: doc.stack as string, units };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}
