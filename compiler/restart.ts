import { isScalar } from 'yaml';
import type { MapReader } from './map-reader.js';
import type { RestartSpec } from './model.js';
import { describe } from './yaml-file.js';

const RESTART_KEYS = ['attempts', 'interval', 'delay', 'max_delay'] as const;
/** The longest duration `restart:` takes: a day. */
const MAX_DURATION_MS = 86_400_000;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;

/**
 * A node's or an element's `restart: { attempts, interval, delay, max_delay }`, as given:
 * each part optional (the plan fills in the rest from its defaults). Durations are `30s`,
 * `5m`, `500ms`, `1h` or a number of seconds.
 */
export function readRestart(r: MapReader, what: string): RestartSpec | undefined {
  if (!r.has('restart')) return undefined;
  const raw = r.raw('restart');
  if (isScalar(raw) && typeof raw.value === 'string') {
    r.faults.add(r.valueAt('restart'), `${what}: 'restart' is a mapping such as { attempts: 5, interval: 5m, delay: 1s }, not ${describe(raw)}; ` +
      `a container that dies is always restarted, and 'restart' says how often before it is marked failed`);
    return undefined;
  }
  const s = r.map('restart', `${what}, restart`, RESTART_KEYS);
  if (!s) return undefined;
  const spec: RestartSpec = {};
  const attempts = s.int('attempts', 0, 1000);
  if (attempts !== undefined) spec.attempts = attempts;
  const interval = duration(s, 'interval', 1);
  if (interval !== undefined) spec.intervalMs = interval;
  const delay = duration(s, 'delay', 0);
  if (delay !== undefined) spec.delayMs = delay;
  const maxDelay = duration(s, 'max_delay', 0);
  if (maxDelay !== undefined) {
    if (delay !== undefined && maxDelay < delay) {
      s.faults.add(s.valueAt('max_delay'), `${what}: restart 'max_delay' (${formatDuration(maxDelay)}) is below 'delay' (${formatDuration(delay)})`);
    } else {
      spec.maxDelayMs = maxDelay;
    }
  }
  return spec;
}

/** A duration in ms, at least `minMs` and at most a day; a fault (and undefined) otherwise. */
function duration(s: MapReader, key: string, minMs: number): number | undefined {
  if (!s.has(key)) return undefined;
  const raw = s.raw(key);
  let ms: number | undefined;
  if (isScalar(raw) && typeof raw.value === 'number' && Number.isFinite(raw.value)) {
    ms = raw.value * 1000;
  } else if (isScalar(raw) && typeof raw.value === 'string') {
    const m = DURATION.exec(raw.value.trim());
    if (m) ms = Number(m[1]) * UNITS[m[2]!]!;
  }
  if (ms === undefined || ms < 0) {
    s.faults.add(s.valueAt(key), `${s.what}: '${key}' must be a duration such as 30s, 5m or 500ms (or a number of seconds), not ${describe(raw)}`);
    return undefined;
  }
  ms = Math.round(ms);
  if (ms < minMs || ms > MAX_DURATION_MS) {
    s.faults.add(s.valueAt(key), `${s.what}: '${key}' must be ${minMs > 0 ? 'more than 0' : '0 or more'} and at most 24h, not ${describe(raw)}`);
    return undefined;
  }
  return ms;
}

function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
