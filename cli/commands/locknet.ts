import { LOCKNET_USAGE, runLocknetCommand } from '../../locknet/index.js';
import type { Command } from '../command.js';

/**
 * `quarry locknet apply|show|flush`: this host's firewall (docs/locknet.md). The agent keeps
 * it on every server; this is for a person looking at, or fixing, one host by hand.
 */
export const locknet: Command = {
  summary: "this host's firewall: apply a membership (--members FILE), show what is in force, flush quarry's rules",
  usage: LOCKNET_USAGE,
  run: (argv, io) => runLocknetCommand(argv, { stdout: io.stdout, cwd: io.cwd }),
};
