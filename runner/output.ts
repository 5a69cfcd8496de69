import { terminalSafe } from '../launcher/index.js';

/** ANSI colors given to units in turn, as foreman and compose do. */
const COLORS = [36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94];

/**
 * Every unit's output on one stream, each line prefixed by `name.member |`, padded to one
 * width and colored per unit when the stream is a terminal. Partial lines are held until
 * their end so that two units never interleave within a line.
 */
export class PrefixedOutput {
  private width = 0;
  private readonly colors = new Map<string, number>();

  constructor(private readonly out: NodeJS.WritableStream, private readonly color: boolean) {}

  /** Makes room for these prefixes so that columns line up from the first line. */
  reserve(prefixes: string[]): void {
    for (const p of prefixes) this.width = Math.max(this.width, p.length);
  }

  /** A writer of one unit's text: call it with chunks as they come, and with no argument at the end. */
  writer(prefix: string, colorOf: string = prefix): (chunk?: string) => void {
    this.reserve([prefix]);
    let held = '';
    return (chunk?: string) => {
      if (chunk === undefined) {
        if (held) this.line(prefix, held, colorOf);
        held = '';
        return;
      }
      held += chunk;
      let at: number;
      while ((at = held.indexOf('\n')) >= 0) {
        this.line(prefix, held.slice(0, at).replace(/\r$/, ''), colorOf);
        held = held.slice(at + 1);
      }
    };
  }

  /** One line from a unit; its control and escape sequences shown escaped (it cannot drive the terminal). */
  line(prefix: string, unitText: string, colorOf: string = prefix): void {
    const text = terminalSafe(unitText);
    const label = `${prefix.padEnd(this.width)} |`;
    if (!this.color) return void this.out.write(`${label} ${text}\n`);
    let code = this.colors.get(colorOf);
    if (code === undefined) this.colors.set(colorOf, (code = COLORS[this.colors.size % COLORS.length]!));
    this.out.write(`\x1b[${code}m${label}\x1b[0m ${text}\n`);
  }
}
