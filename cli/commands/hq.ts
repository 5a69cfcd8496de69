import { loadHqConfig, startControl, startDaemon } from '../../hq/index.js';
import type { Command } from '../command.js';
import { parseConfigFlag, stopSignal } from '../../config/index.js';

export const hq: Command = {
  summary: 'the HQ server: git push over SSH, HTTP API, router, and its own etcd unless configured',
  usage: 'quarry hq [--config URL]',
  async run(argv, io) {
    const { config: location } = parseConfigFlag(argv);
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
