import type { Command } from '../command.js';
import { build } from './build.js';
import { keys } from './keys.js';
import { router } from './router.js';
import { run } from './run.js';
import { start } from './start.js';
import { stop } from './stop.js';

/** Every subcommand, by name. One module per command, as `quarry help` lists them. */
export const commands: Record<string, Command> = {
  build,
  keys,
  router,
  run,
  start,
  stop,
};
