import { readFileSync } from 'node:fs';
import { WiringError } from './errors.js';
import type { PortTuning, PortWiring, Target, Wiring } from './wiring-format.js';

export type {
  InPortWiring, Member, OutPortWiring, PortKind, PortTuning, PortWiring, Target, Wiring,
} from './wiring-format.js';

export const DEFAULT_TUNING: Required<PortTuning> = {
  batch: 256,
  flushMs: 5,
  queue: 32,
  timeoutMs: 5000,
  concurrency: 64,
};

/** A port's tuning: its own settings, then the wiring's defaults, then quarry's. */
export function tuningOf(wiring: Wiring, port: PortWiring): Required<PortTuning> {
  return { ...DEFAULT_TUNING, ...defined(wiring.defaults ?? {}), ...defined(port) };
}

function defined(t: PortTuning): PortTuning {
  const out: PortTuning = {};
  for (const key of Object.keys(DEFAULT_TUNING) as (keyof PortTuning)[]) {
    const value = t[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** A hash spread's field, or undefined for round-robin. */
export function hashFieldOf(target: Target): string | undefined {
  const by = target.by ?? 'round-robin';
  if (by === 'round-robin') return undefined;
  if (by.startsWith('hash:') && by.length > 5) return by.slice(5);
  throw new WiringError(`target ${target.element}.${target.port}: unknown spread '${by}' (round-robin or hash:<field>)`);
}

/** Checks a parsed JSON value and returns it as a Wiring, or throws a WiringError naming each fault. */
export function parseWiring(value: unknown, source = 'wiring'): Wiring {
  const faults: string[] = [];
  const fault = (m: string) => faults.push(m);
  if (!isObject(value)) throw new WiringError(`${source}: not a JSON object`);
  if (typeof value.element !== 'string' || value.element === '') fault('element: a non-empty string is required');
  for (const key of ['member', 'members'] as const) {
    const v = value[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0)) fault(`${key}: a whole number is required`);
  }
  if (value.config !== undefined && !isObject(value.config)) fault('config: an object is required');
  if (value.control !== undefined && typeof value.control !== 'string') fault('control: an endpoint string is required');
  if (!isObject(value.ports)) fault('ports: an object is required');
  else {
    for (const [name, port] of Object.entries(value.ports)) checkPort(name, port, fault);
  }
  if (faults.length > 0) throw new WiringError(`${source}: ${faults.join('; ')}`);
  return value as unknown as Wiring;
}

function checkPort(name: string, port: unknown, fault: (m: string) => void): void {
  if (!isObject(port)) return void fault(`ports.${name}: an object is required`);
  if (port.kind !== 'push' && port.kind !== 'query') fault(`ports.${name}.kind: push or query`);
  if (port.dir === 'in') {
    if (typeof port.bind !== 'string' || port.bind === '') fault(`ports.${name}.bind: an endpoint is required for an in port`);
  } else if (port.dir === 'out') {
    if (!Array.isArray(port.targets)) return void fault(`ports.${name}.targets: a list is required for an out port`);
    port.targets.forEach((t: unknown, i: number) => {
      const at = `ports.${name}.targets[${i}]`;
      if (!isObject(t)) return void fault(`${at}: an object is required`);
      if (typeof t.element !== 'string' || typeof t.port !== 'string') fault(`${at}: element and port are required`);
      if (t.by !== undefined && (typeof t.by !== 'string' || !/^(round-robin|hash:.+)$/.test(t.by))) {
        fault(`${at}.by: round-robin or hash:<field>`);
      }
      if (!Array.isArray(t.members)) return void fault(`${at}.members: a list is required`);
      t.members.forEach((m: unknown, j: number) => {
        if (!isObject(m) || typeof m.id !== 'string' || typeof m.endpoint !== 'string') {
          fault(`${at}.members[${j}]: {id, endpoint} strings are required`);
        }
      });
    });
  } else fault(`ports.${name}.dir: in or out`);
  for (const key of Object.keys(DEFAULT_TUNING)) {
    const v = port[key];
    if (v !== undefined && !(typeof v === 'number' && v > 0)) fault(`ports.${name}.${key}: a positive number is required`);
  }
}

/**
 * The wiring of this process: `QUARRY_WIRING` (JSON text) or `QUARRY_WIRING_FILE` (a path),
 * or an explicit file or JSON text from the command line.
 */
export function readWiring(env: NodeJS.ProcessEnv, arg?: string): Wiring {
  const text = (from: string, body: () => string): Wiring => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body());
    } catch (err) {
      throw new WiringError(`${from}: ${(err as Error).message}`, { cause: err });
    }
    return parseWiring(parsed, from);
  };
  if (arg !== undefined) {
    if (arg.trimStart().startsWith('{')) return text('--wiring', () => arg);
    return text(arg, () => readFileSync(arg, 'utf8'));
  }
  if (env.QUARRY_WIRING) return text('QUARRY_WIRING', () => env.QUARRY_WIRING as string);
  const file = env.QUARRY_WIRING_FILE;
  if (file) return text(file, () => readFileSync(file, 'utf8'));
  throw new WiringError('no wiring: set QUARRY_WIRING (JSON) or QUARRY_WIRING_FILE, or pass --wiring FILE');
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
