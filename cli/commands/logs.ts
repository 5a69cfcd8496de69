import { UsageError } from '../../errors/index.js';
import { terminalSafe } from '../../launcher/index.js';
import { clientFor, parseHqArgs } from '../client.js';
import type { Command } from '../command.js';

export const logs: Command = {
  summary: "containers' output, each line prefixed with its container; -f follows",
  usage: 'quarry logs STACK [NAME] [-f|--follow] [--tail N] [--json] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, {
      follow: { type: 'boolean', short: 'f' },
      tail: { type: 'string', short: 'n' },
      json: { type: 'boolean' },
    });
    const [stack, name, ...rest] = positionals;
    if (!stack) throw new UsageError('name the stack');
    if (rest.length > 0) throw new UsageError(`one node or element at most, not ${rest.length + 1}`);
    let tail: number | undefined;
    if (values.tail !== undefined) {
      if (!/^\d+$/.test(values.tail)) throw new UsageError(`--tail wants a number of lines, not '${values.tail}'`);
      tail = Number(values.tail);
    }
    // Prefixes grow to the longest container name seen, like compose's.
    let width = 0;
    await clientFor(values, io).logs(stack, name, { follow: values.follow === true, tail }, (line) => {
      if (values.json) {
        io.stdout.write(`${JSON.stringify(line)}\n`);
        return;
      }
      width = Math.max(width, line.container.length);
      // What a container wrote is shown, never obeyed: its escape sequences print escaped.
      io.stdout.write(`${line.container.padEnd(width)} | ${terminalSafe(line.text)}\n`);
    });
    return 0;
  },
};
