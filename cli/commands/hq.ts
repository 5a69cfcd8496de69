import { parseArgs } from 'node:util';
import { UsageError } from '../../errors/index.js';
import { loadHqConfig, startControl, startDaemon } from '../../hq/index.js';
import type { Command } from '../command.js';

function parse(argv: string[]): { config: string | undefined } {
  try {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true });
    return { config: values.config };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
function stopSignal(): Promise<string> {
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

export const hq: Command = {
  summary: 'the HQ server: git push over SSH, HTTP API, router, and its own etcd unless configured',
  usage: 'quarry hq [--config URL]',
  async run(argv, io) {
    const { config: location } = parse(argv);
    const config = await loadHqConfig(location, { cwd: io.cwd, env: io.env });
    const log = (line: string) => io.stderr.write(`quarry hq: ${line}\n`);
    // Signals that come while HQ starts stop it as soon as it has started.
    const stopped = stopSignal();
    const daemon = await startDaemon(config, startControl, { log });
    io.stdout.write(`quarry hq: ready; API ${daemon.info.api}, git ${daemon.info.push}STACK, router port ${daemon.info.routerPort}\n`);
    const signal = await stopped;
    log(`${signal}: stopping`);
    await daemon.close();
    log('stopped');
    return 0;
  },
};
