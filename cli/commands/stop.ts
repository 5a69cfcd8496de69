import { resolve } from 'node:path';
import { isProcessAlive } from '../../home/index.js';
import { parseArgs } from 'node:util';
import { UsageError } from '../../errors/index.js';
import {
  compileLocal, liveRunState, localDocker, NotRunningError, removeRunState, runOfFolder, stateFile, sweepStack,
  type RunState,
} from '../../runner/index.js';
import type { Command } from '../command.js';

/** How long a runner gets to stop its units before it and its process group are killed. */
const STOP_TIMEOUT_MS = 60_000;

export const stop: Command = {
  summary: 'stop a stack started with quarry start (or quarry run) on this machine, and wait until all of it is gone',
  usage: 'quarry stop [DIR]',
  async run(argv, io) {
    const { positionals } = parse(argv);
    if (positionals.length > 1) throw new UsageError(`one stack folder at most, not ${positionals.length}`);
    const dirArg = positionals[0] ?? '.';
    // Found by folder first, so that a stack whose quarry.yml no longer compiles still stops.
    let state: RunState | undefined = runOfFolder(io.env, resolve(io.cwd, dirArg));
    let stackName = state?.stack;
    if (!state) {
      const { stack } = compileLocal(io.cwd, dirArg);
      stackName = stack.name;
      state = liveRunState(stateFile(io.env, stack.name));
    }
    if (!state) throw new NotRunningError(`${stackName} is not running on this machine (nothing started by quarry start or quarry run)`);

    io.stderr.write(`quarry: stopping ${state.stack} (pid ${state.pid}) …\n`);
    process.kill(state.pid, 'SIGTERM');
    const until = Date.now() + STOP_TIMEOUT_MS;
    while (isProcessAlive(state.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    if (isProcessAlive(state.pid)) {
      io.stderr.write(`quarry: ${state.stack} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it and what it started\n`);
      try {
        process.kill(state.detached ? -state.pid : state.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      const docker = state.mode === 'docker' ? await localDocker(io.env) : undefined;
      if (docker) await sweepStack(docker, state.stack);
      removeRunState(stateFile(io.env, state.stack), state.pid);
    }
    io.stdout.write(`${state.stack} stopped\n`);
    return 0;
  },
};

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: {} });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
