import { QuarryError, UsageError } from '../errors/index.js';
import type { Command, CommandIO } from './command.js';
import { commands } from './commands/index.js';

export type { Command, CommandIO } from './command.js';

function help(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: quarry <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n` +
    `Run 'quarry <command> --help' for a command's options.\n`;
}

/** Runs one `quarry` command line; resolves with the exit code. Never throws. */
export async function runCli(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(help());
    return name ? 0 : 2;
  }
  const command: Command | undefined = commands[name];
  if (!command) {
    io.stderr.write(`quarry: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`quarry ${name}: ${err.message}\nusage: ${command.usage}\n`);
      return err.exitCode;
    }
    if (err instanceof QuarryError) {
      io.stderr.write(`${err.message.endsWith('\n') ? err.message : err.message + '\n'}`);
      return err.exitCode;
    }
    io.stderr.write(`quarry ${name}: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
}
