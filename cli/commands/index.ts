import type { Command } from '../command.js';
import { agent } from './agent.js';
import { build } from './build.js';
import { certs } from './certs.js';
import { env } from './env.js';
import { grid } from './grid.js';
import { hq } from './hq.js';
import { keys } from './keys.js';
import { locknet } from './locknet.js';
import { logs } from './logs.js';
import { ps } from './ps.js';
import { releases } from './releases.js';
import { rollback } from './rollback.js';
import { router } from './router.js';
import { run } from './run.js';
import { scale } from './scale.js';
import { servers } from './servers.js';
import { start } from './start.js';
import { stop } from './stop.js';
import { top } from './top.js';

/** Every subcommand, by name. One module per command, as `quarry help` lists them. */
export const commands: Record<string, Command> = {
  agent,
  build,
  certs,
  env,
  grid,
  hq,
  keys,
  locknet,
  logs,
  ps,
  releases,
  rollback,
  router,
  run,
  scale,
  servers,
  start,
  stop,
  top,
};
