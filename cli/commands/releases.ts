import { UsageError } from '../../errors/index.js';
import { clientFor, parseHqArgs, table } from '../client.js';
import type { Command } from '../command.js';

export const releases: Command = {
  summary: "a stack's releases, newest first",
  usage: 'quarry releases STACK [--json] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' } });
    const [stack, ...rest] = positionals;
    if (!stack) throw new UsageError('name the stack');
    if (rest.length > 0) throw new UsageError(`one stack at a time, not ${rest.length + 1}`);
    const list = await clientFor(values, io).releases(stack);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    io.stdout.write(table(
      ['RELEASE', 'WHEN', 'COMMIT', 'DESCRIPTION'],
      list.map((r) => [`v${r.version}`, when(r.at), r.commit.slice(0, 7) || '-', r.description]),
    ));
    return 0;
  },
};

/** `2026-01-02 12:00:00Z`: ISO time, to the second, readable. */
function when(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
