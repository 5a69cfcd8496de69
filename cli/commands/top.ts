import { UsageError } from '../../errors/index.js';
import type { TopConnection, TopView } from '../../hq/index.js';
import { clientFor, parseHqArgs, table, type HqClient } from '../client.js';
import type { Command, CommandIO } from '../command.js';

/** How often the live view asks HQ again. */
export const TOP_INTERVAL_MS = 1000;

export const top: Command = {
  summary: 'what flows through a stack, live: each element\'s instances, rates and busy time, each connection\'s rate and queue',
  usage: 'quarry top [STACK] [--json] [--no-color] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' }, 'no-color': { type: 'boolean' } });
    if (positionals.length > 1) throw new UsageError(`one stack at most, not ${positionals.length}`);
    const client = clientFor(values, io);
    const stack = positionals[0] ?? await onlyStack(client);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(await client.top(stack), null, 2)}\n`);
      return 0;
    }
    const tty = (io.stdout as { isTTY?: boolean }).isTTY === true;
    const color = tty && !values['no-color'] && !io.env.NO_COLOR;
    if (!tty) {
      // Piped or redirected: one snapshot, as a table.
      io.stdout.write(topText(await client.top(stack), { color: false }));
      return 0;
    }
    return live(client, stack, io, color);
  },
};

/** With no STACK: HQ's only stack; with none or several, the user names it. */
async function onlyStack(client: HqClient): Promise<string> {
  const stacks = await client.stacks();
  if (stacks.length === 1) return stacks[0]!;
  if (stacks.length === 0) throw new UsageError('HQ has no stack yet: push one first');
  throw new UsageError(`name the stack: HQ has ${stacks.join(', ')}`);
}

/**
 * Redraws the view every second (clear screen, cursor home) until Ctrl-C, which ends it with
 * the cursor back and exit 0. A failed refresh keeps the last view and says why under it;
 * the first one fails the command.
 */
async function live(client: HqClient, stack: string, io: CommandIO, color: boolean): Promise<number> {
  let view = await client.top(stack);
  let problem: string | undefined;
  const draw = () => {
    const note = problem ? `\n${paint(`HQ: ${problem}; trying again`, 'red', color)}\n` : '';
    io.stdout.write(`\x1b[H\x1b[2J${topText(view, { color })}${note}\n(every ${TOP_INTERVAL_MS / 1000} s; Ctrl-C quits)\n`);
  };
  io.stdout.write('\x1b[?25l');
  draw();
  return new Promise<number>((resolve) => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.stdout.write('\x1b[?25h');
      resolve(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const tick = async () => {
      try {
        view = await client.top(stack);
        problem = undefined;
      } catch (err) {
        problem = (err as Error).message.split('\n')[0];
      }
      if (stopped) return;
      draw();
      timer = setTimeout(() => void tick(), TOP_INTERVAL_MS);
    };
    timer = setTimeout(() => void tick(), TOP_INTERVAL_MS);
  });
}

type Colour = 'green' | 'yellow' | 'red' | 'dim';
const CODES: Record<Colour, string> = { green: '32', yellow: '33', red: '31', dim: '2' };

function paint(text: string, colour: Colour, on: boolean): string {
  return on && text !== '' ? `\x1b[${CODES[colour]}m${text}\x1b[0m` : text;
}

/** NiFi's colours for a queue's fill: green under 60 %, yellow 60–85 %, red over 85 %. */
const LEVEL_COLOUR: Record<NonNullable<TopConnection['level']>, Colour> = { low: 'green', mid: 'yellow', high: 'red' };

/** Logs per second: `0`, `4.5`, `120`, `12.3k`; `-` when unknown. */
export function rateText(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return '-';
  if (rate >= 10_000) return `${(rate / 1000).toFixed(1)}k`;
  if (rate >= 100 || rate === 0) return String(Math.round(rate));
  return rate.toFixed(1);
}

function percent(fraction: number | null | undefined): string {
  return fraction === null || fraction === undefined ? '-' : `${Math.round(fraction * 100)}%`;
}

function age(ms: number): string {
  if (ms < 0) return '?';
  return ms < 60_000 ? `${Math.floor(ms / 1000)}s` : `${Math.floor(ms / 60_000)}m`;
}

/**
 * What `quarry top` shows of one snapshot: a heading, the elements (each with its instances
 * indented under it: server, rate, busy, how old its figures are, `stale` past HQ's bound),
 * then the connections: rate, the fullest receiving instance's queue (`90/100`) and its fill,
 * coloured green, yellow or red by NiFi's thresholds when `color`; `!` marks a connection
 * whose receiver holds back its sender or whose queue is over 85 % full, so that it reads
 * without colour too.
 */
export function topText(view: TopView, options: { color: boolean }): string {
  const { color } = options;
  const lines: string[] = [`${view.stack} ${view.release}  ${view.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}\n`];
  if (view.unavailable) lines.push(paint(`no figures: ${view.unavailable}`, 'red', color) + '\n');
  lines.push('\n');
  if (view.elements.length === 0) lines.push('no elements\n');
  else {
    const rows: string[][] = [];
    for (const e of view.elements) {
      const reporting = e.instances.filter((i) => !i.stale).length;
      rows.push([e.name, e.class, `${reporting}/${e.scale}`, '', rateText(e.rate), percent(e.busy), e.stale ? 'stale' : e.instances.length === 0 ? 'no figures' : '']);
      for (const i of e.instances) {
        rows.push([`  ${e.name}.${i.replica}`, '', '', i.server, rateText(i.rate), percent(i.busy), `${age(i.ageMs)}${i.stale ? ' stale' : ''}`]);
      }
    }
    lines.push(dimStale(table(['ELEMENT', 'CLASS', 'UP', 'SERVER', 'RATE/s', 'BUSY', 'FIGURES'], rows), color));
  }
  if (view.connections.length > 0) {
    lines.push('\n');
    const rows = view.connections.map((c) => {
      const arrow = c.kind === 'push' ? '->' : '=>';
      const mark = c.backpressure || c.level === 'high' ? ' !' : '';
      const fill = c.fill === null ? (c.backpressure ? '!' : '-') : `${percent(c.fill)}${mark}`;
      const queue = c.queued === null ? '-' : `${c.queued}/${c.queueLimit ?? '?'}`;
      const latency = c.p99Ms !== undefined ? ` p50 ${c.p50Ms ?? '?'}ms p99 ${c.p99Ms}ms` : '';
      return [
        `${c.from.name}.${c.from.port} ${arrow} ${c.to.name}.${c.to.port}`, c.kind, `${rateText(c.rate)}${c.stale ? ' stale' : ''}`, queue,
        // Last column: not padded, so its colour codes do not upset the alignment.
        paint(fill, c.level ? LEVEL_COLOUR[c.level] : c.backpressure ? 'red' : 'dim', color && fill !== '-') + latency,
      ];
    });
    lines.push(table(['CONNECTION', 'KIND', 'RATE/s', 'QUEUE', 'FILL'], rows));
  }
  return lines.join('');
}

/** Stale rows dimmed (whole lines: the alignment is kept). */
function dimStale(text: string, color: boolean): string {
  if (!color) return text;
  return text.split('\n').map((l) => (/\bstale$/.test(l) ? paint(l, 'dim', true) : l)).join('\n');
}
