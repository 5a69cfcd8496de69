/**
 * The agent image's entry (`docker run quarry/agent agent --config URL`): the same as
 * `quarry agent --config URL`, without the rest of the CLI (no compiler), so that it bundles
 * into one file. `router --config URL` runs `quarry router` (a grid's router hosts run the
 * container `quarry-router` from this image; its workers are forked with this same command line).
 */
import { parseConfigFlag, stopSignal } from '../../config/index.js';
import { QuarryError } from '../../errors/index.js';
import { LOCKNET_USAGE, runLocknetCommand } from '../../locknet/index.js';
import { runRouterCommand } from '../../router/index.js';
import { runAgentDaemon } from './daemon.js';

const USAGE = `usage: agent --config URL | router --config URL | ${LOCKNET_USAGE.replaceAll('quarry ', '')}`;

async function main(argv: string[]): Promise<number> {
  const args = argv[0] === 'agent' || argv[0] === 'router' ? argv.slice(1) : argv;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const name = argv[0] === 'router' ? 'quarry router' : 'quarry agent';
  try {
    if (argv[0] === 'router') return await runRouterCommand(args, { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env });
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
      process.stderr.write(`${err.message.startsWith(`${name}:`) ? '' : `${name}: `}${err.message}\n${err.exitCode === 2 ? `${USAGE}\n` : ''}`);
      return err.exitCode;
    }
    process.stderr.write(`${name}: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
}

// No top-level await: the image's bundle is CommonJS. Exit once stopped, whatever handles
// the engine's or etcd's clients still hold.
void main(process.argv.slice(2)).then((code) => process.exit(code));
