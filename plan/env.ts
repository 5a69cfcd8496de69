import { serviceEnvNames, type StackSpec } from '../compiler/index.js';

/** Names quarry sets in every container itself: `QUARRY_STACK`, `QUARRY_WIRING`…, and `PORT`. */
const RESERVED_ENV = /^(QUARRY_.*|PORT)$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * What is wrong with an env change (`quarry env STACK set KEY=VALUE unset KEY`) of a stack:
 * each fault as the user sees it, none when it can be made. Keys must be env names and not
 * ones quarry sets itself (`QUARRY_*`, `PORT`, each service's `<NAME>_HOST` and
 * `<NAME>_PORT`); values must be strings; the change must change something.
 */
export function envFaults(spec: StackSpec, set: Record<string, unknown>, unset: readonly string[]): string[] {
  const reserved = new Set(spec.nodes.filter((n) => n.type === 'service').flatMap((n) => Object.values(serviceEnvNames(n.name))));
  const faults: string[] = [];
  for (const key of [...Object.keys(set), ...unset]) {
    if (!ENV_KEY.test(key)) faults.push(`'${key}' is not an env name (letters, digits and _, not starting with a digit)`);
    else if (RESERVED_ENV.test(key) || reserved.has(key)) faults.push(`${key} is set by quarry itself`);
  }
  for (const [key, value] of Object.entries(set)) if (typeof value !== 'string') faults.push(`${key}: the value must be a string`);
  if (Object.keys(set).length + unset.length === 0) faults.push('say what to change: set KEY=VALUE or unset KEY');
  return faults;
}

/** `env` with the keys of `set` set and those of `unset` removed (a new object; `env` is left as it is). */
export function changeEnv(env: Record<string, string>, set: Record<string, string>, unset: readonly string[]): Record<string, string> {
  const out = { ...env, ...set };
  for (const key of unset) delete out[key];
  return out;
}

/** The stack with the env set by `quarry env` merged over quarry.yml's own `env`: what its containers get. */
export function withEnv(spec: StackSpec, env: Record<string, string>): StackSpec {
  return { ...spec, env: { ...spec.env, ...env } };
}
