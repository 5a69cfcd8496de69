import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

/** What the machine's kernel says about its load and memory. */
export interface HostStats {
  cpus: number;
  /** The 1-minute load average. */
  load1: number;
  memory: { totalMb: number; availableMb: number };
}

/** A /proc text that does not read as expected: names the file and what was wrong. */
export class ProcParseError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'ProcParseError';
  }
}

/** `/proc/loadavg` (`0.52 0.58 0.59 2/345 12345`) → its three load averages. */
export function parseLoadavg(text: string): { load1: number; load5: number; load15: number } {
  const fields = text.trim().split(/\s+/);
  const numbers = fields.slice(0, 3).map((f) => (/^\d+(\.\d+)?$/.test(f) ? Number(f) : NaN));
  const [load1, load5, load15] = numbers;
  if (numbers.length < 3 || load1 === undefined || load5 === undefined || load15 === undefined ||
      numbers.some((n) => Number.isNaN(n))) {
    throw new ProcParseError('/proc/loadavg', `expected three load averages, got ${JSON.stringify(text.slice(0, 60))}`);
  }
  return { load1, load5, load15 };
}

/**
 * `/proc/meminfo` → total and available memory in MB (whole, rounded down). Kernels before
 * 3.14 have no MemAvailable: then it is MemFree + Buffers + Cached, as `free` did.
 */
export function parseMeminfo(text: string): { totalMb: number; availableMb: number } {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (match) kb.set(match[1]!, Number(match[2]));
  }
  const total = kb.get('MemTotal');
  if (total === undefined) throw new ProcParseError('/proc/meminfo', 'no MemTotal line');
  let available = kb.get('MemAvailable');
  if (available === undefined) {
    const free = kb.get('MemFree');
    if (free === undefined) throw new ProcParseError('/proc/meminfo', 'neither MemAvailable nor MemFree');
    available = free + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0);
  }
  const mb = (k: number) => Math.floor(k / 1024);
  return { totalMb: mb(total), availableMb: Math.min(mb(available), mb(total)) };
}

/**
 * Reads the machine's load and memory from /proc (under `procRoot`, for tests), and its cpus
 * as `nproc` counts them (the ones this process may run on).
 */
export async function readHostStats(procRoot = '/proc'): Promise<HostStats> {
  const [loadavg, meminfo] = await Promise.all([
    readFile(`${procRoot}/loadavg`, 'utf8'),
    readFile(`${procRoot}/meminfo`, 'utf8'),
  ]);
  return {
    cpus: availableParallelism(),
    load1: parseLoadavg(loadavg).load1,
    memory: parseMeminfo(meminfo),
  };
}
