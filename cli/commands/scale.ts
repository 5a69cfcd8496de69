import { UsageError } from '../../errors/index.js';
import { clientFor, parseHqArgs, printProgress, releasedLine } from '../client.js';
import type { Command } from '../command.js';

export const scale: Command = {
  summary: 'change the number of containers of nodes or elements (makes a release)',
  usage: 'quarry scale STACK NAME=N... [--json] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' } });
    const [stack, ...pairs] = positionals;
    if (!stack) throw new UsageError('name the stack');
    if (pairs.length === 0) throw new UsageError('say what to scale, e.g. web=3');
    const changes: Record<string, number> = {};
    for (const pair of pairs) {
      const match = /^([^=\s]+)=(\d+)$/.exec(pair);
      if (!match) throw new UsageError(`'${pair}' is not NAME=N (N a whole number from 0)`);
      changes[match[1]!] = Number(match[2]);
    }
    const release = await clientFor(values, io).scale(stack, changes, printProgress(io, values.json === true));
    io.stdout.write(values.json ? `${JSON.stringify(release, null, 2)}\n` : releasedLine(release));
    return 0;
  },
};
