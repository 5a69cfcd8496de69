/**
 * The agent image's entry (`docker run quarry/agent agent --config URL`): the same as
 * `quarry agent --config URL`, without the rest of the CLI (no zeromq, no compiler), so that
 * it bundles into one file.
 */
import { parseConfigFlag, stopSignal } from '../../config/index.js';
import { QuarryError } from '../../errors/index.js';
import { LOCKNET_USAGE, runLocknetCommand } from '../../locknet/index.js';
import { runAgentDaemon } from './daemon.js';

const USAGE = `usage: agent --config URL | ${LOCKNET_USAGE.replaceAll('quarry ', '')}`;

async function main(argv: string[]): Promise<number> {
  const args = argv[0] === 'agent' ? argv.slice(1) : argv;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    // `docker exec quarry-agent node /quarry-agent.js locknet show`: the server's firewall, by hand.
    if (argv[0] === 'locknet') return await runLocknetCommand(argv.slice(1), { stdout: process.stdout });
    const { config } = parseConfigFlag(args);
    await runAgentDaemon(config, {
      cwd: process.cwd(),
      stopped: stopSignal,
      log: (line) => process.stdout.write(`quarry agent: ${line}\n`),
    });
    return 0;
  } catch (err) {
    if (err instanceof QuarryError) {
      process.stderr.write(`quarry agent: ${err.message}\n${err.exitCode === 2 ? `${USAGE}\n` : ''}`);
      return err.exitCode;
    }
    process.stderr.write(`quarry agent: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
}

// No top-level await: the image's bundle is CommonJS. Exit once stopped, whatever handles
// the engine's or etcd's clients still hold.
void main(process.argv.slice(2)).then((code) => process.exit(code));
