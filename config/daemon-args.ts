import { parseArgs } from 'node:util';
import { UsageError } from '../errors/index.js';

/** A daemon's one setting, `--config URL` (DESIGN.md: each daemon takes only that). */
export function parseConfigFlag(argv: string[]): { config: string | undefined } {
  try {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true });
    return { config: values.config };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
export function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
