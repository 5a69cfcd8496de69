import { UsageError } from '../../errors/index.js';
import type { PsRow } from '../../hq/index.js';
import { clientFor, parseHqArgs, table } from '../client.js';
import type { Command } from '../command.js';
import { rateText } from './top.js';

export const ps: Command = {
  summary: 'the containers of every stack or of one: kind, state, health, restarts, last exit, rate, release, server',
  usage: 'quarry ps [STACK] [--json] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' } });
    if (positionals.length > 1) throw new UsageError(`one stack at most, not ${positionals.length}`);
    const rows = await clientFor(values, io).ps(positionals[0]);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    if (rows.length === 0) {
      io.stderr.write(positionals[0] ? `no containers of ${positionals[0]} run\n` : 'no containers run\n');
      return 0;
    }
    io.stdout.write(psTable(rows, Date.now()));
    return 0;
  },
};

/**
 * The table `quarry ps` prints. RESTARTS is `?` when HQ could not read its caretakers' records
 * in time (and `-` from an HQ that does not count them); LAST EXIT is the code and how long
 * ago, `137 2m ago`, or `-`; RATE an element's logs handled per second (its instance's
 * metrics), `-` for nodes and for an element with no fresh figures.
 */
export function psTable(rows: PsRow[], now: number): string {
  return table(
    ['CONTAINER', 'KIND', 'STATE', 'HEALTH', 'RESTARTS', 'LAST EXIT', 'RATE', 'RELEASE', 'SERVER', 'ADDRESS'],
    rows.map((r) => [
      r.container, r.kind, r.state, r.health,
      r.restarts === null ? '?' : r.restarts === undefined ? '-' : String(r.restarts),
      r.lastExit ? `${r.lastExit.code} ${ago(Date.parse(r.lastExit.at), now)}` : '-',
      rateText(r.rate),
      r.release, r.server, r.address ?? '-',
    ]),
  );
}

/** `just now`, `40s ago`, `2m ago`, `3h ago`, `5d ago`. */
export function ago(at: number, now: number): string {
  if (!Number.isFinite(at)) return '?';
  const s = Math.max(0, Math.floor((now - at) / 1000));
  if (s < 1) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}
