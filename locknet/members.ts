import { isIP } from 'node:net';
import { LocknetInputError } from './errors.js';

/** A host the firewall lets in: a server record (`/quarry/network/hosts/<id>`). */
export interface Member {
  id?: string;
  ip: string;
}

/**
 * The members in a membership file: a JSON array of server records `{"id": …, "ip": …}`
 * (other keys are allowed and ignored). `source` names the file in errors (`stdin` for `-`).
 * Every error names the file, the entry (its index, and its id when it has one) and the bad
 * value as it was written.
 */
export function parseMembers(text: string, source: string): Member[] {
  if (text.trim() === '') throw new LocknetInputError(`${source}: is empty; expected a JSON array of server records {"id": …, "ip": …}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new LocknetInputError(`${source}: not JSON (${where(text, (err as Error).message)}); expected an array of server records {"id": …, "ip": …}`);
  }
  if (!Array.isArray(value)) {
    throw new LocknetInputError(`${source}: expected a JSON array of server records {"id": …, "ip": …}, got ${describe(value)}`);
  }
  return value.map((entry: unknown, index) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new LocknetInputError(`${source}: entry ${index}: expected a server record {"id": …, "ip": …}, got ${JSON.stringify(entry)}`);
    }
    const record = entry as { id?: unknown; ip?: unknown };
    if (record.id !== undefined && typeof record.id !== 'string') {
      throw new LocknetInputError(`${source}: entry ${index}: "id" is ${JSON.stringify(record.id)}, not a string`);
    }
    const where = `entry ${index}${typeof record.id === 'string' ? ` (id ${JSON.stringify(record.id)})` : ''}`;
    if (record.ip === undefined) throw new LocknetInputError(`${source}: ${where}: has no "ip"`);
    if (typeof record.ip !== 'string' || isIP(record.ip) === 0 || record.ip.includes('%')) {
      throw new LocknetInputError(`${source}: ${where}: "ip" is ${JSON.stringify(record.ip)}, not an IPv4 or IPv6 address`);
    }
    return typeof record.id === 'string' ? { id: record.id, ip: record.ip } : { ip: record.ip };
  });
}

/** `22,80,443` → [22, 80, 443]; each entry a TCP port 1–65535, else an error naming `source` and the entry. */
export function parsePorts(text: string, source: string): number[] {
  const entries = text.split(',').map((e) => e.trim());
  return entries.map((entry, index) => {
    const port = /^\d{1,5}$/.test(entry) ? Number(entry) : NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw new LocknetInputError(`${source}: entry ${index} is ${JSON.stringify(entry)}, not a TCP port (1 to 65535)`);
    }
    return port;
  });
}

/** JSON.parse's complaint with the line and column of the position it names (or of the end, for a text cut short). */
function where(text: string, message: string): string {
  const at = /at position (\d+)/.exec(message);
  const position = at ? Number(at[1]) : /end of JSON input/.test(message) ? text.length : undefined;
  if (position === undefined) return message;
  const lines = text.slice(0, position).split('\n');
  return `${message}, line ${lines.length} column ${lines.at(-1)!.length + 1}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`;
}
