import { UsageError } from '../../errors/index.js';
import { clientFor, parseHqArgs, table } from '../client.js';
import type { Command } from '../command.js';

export const ps: Command = {
  summary: 'the containers of every stack or of one: kind, state, health, release, server',
  usage: 'quarry ps [STACK] [--json] [--hq URL] [--token TOKEN]',
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
    io.stdout.write(table(
      ['CONTAINER', 'KIND', 'STATE', 'HEALTH', 'RELEASE', 'SERVER', 'ADDRESS'],
      rows.map((r) => [r.container, r.kind, r.state, r.health, r.release, r.server, r.address ?? '-']),
    ));
    return 0;
  },
};
