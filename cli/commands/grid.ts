import { UsageError } from '../../errors/index.js';
import { type GridView } from '../../hq/index.js';
import { clientFor, parseHqArgs } from '../client.js';
import type { Command } from '../command.js';

/**
 * `quarry grid [STACK]`: slicegrid's drawing of the allocation of slices (containers'
 * memory) onto servers, then the grid's autosize, min and max. With a stack, its slices are
 * drawn `#` (the others' `=`) and only they are listed.
 */
export const grid: Command = {
  summary: 'the allocation of containers (slices) onto servers, drawn; with STACK, its slices marked',
  usage: 'quarry grid [STACK] [--json] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' } });
    if (positionals.length > 1) throw new UsageError(`one stack at most, not ${positionals.length}`);
    const view = await clientFor(values, io).grid(positionals[0]);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
      return 0;
    }
    io.stdout.write(view.drawing.endsWith('\n') ? view.drawing : `${view.drawing}\n`);
    io.stdout.write(`${limits(view)}\n`);
    return 0;
  },
};

/** `autosize on, min 1, max 5` (`max none` when the grid has no upper limit). */
function limits(view: GridView): string {
  return `autosize ${view.autosize ? 'on' : 'off'}, min ${view.min}, max ${view.max ?? 'none'}`;
}
