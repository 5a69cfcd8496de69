import { runAgentDaemon } from '../../launcher/index.js';
import type { Command } from '../command.js';
import { parseConfigFlag, stopSignal } from '../../config/index.js';

export const agent: Command = {
  summary: 'the per-server caretaker: the server\'s record and load in etcd, under a lease',
  usage: 'quarry agent --config URL',
  async run(argv, io) {
    const { config: location } = parseConfigFlag(argv);
    await runAgentDaemon(location, {
      cwd: io.cwd,
      stopped: stopSignal,
      log: (line) => io.stdout.write(`quarry agent: ${line}\n`),
    });
    return 0;
  },
};
