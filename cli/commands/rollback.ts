import { UsageError } from '../../errors/index.js';
import { clientFor, parseHqArgs, printProgress, releasedLine } from '../client.js';
import type { Command } from '../command.js';

export const rollback: Command = {
  summary: 'make a new release with the code, env and scale of an earlier one',
  usage: 'quarry rollback STACK vN [--json] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' } });
    const [stack, version, ...rest] = positionals;
    if (!stack) throw new UsageError('name the stack');
    if (!version) throw new UsageError(`name the release to go back to, e.g. v2 (see quarry releases ${stack})`);
    if (rest.length > 0) throw new UsageError('one release at a time');
    const match = /^v?([1-9]\d*)$/.exec(version);
    if (!match) throw new UsageError(`'${version}' is not a release; releases are v1, v2, …`);
    const release = await clientFor(values, io).rollback(stack, Number(match[1]), printProgress(io, values.json === true));
    io.stdout.write(values.json ? `${JSON.stringify(release, null, 2)}\n` : releasedLine(release));
    return 0;
  },
};
