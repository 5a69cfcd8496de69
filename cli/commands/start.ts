import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { QuarryError, UsageError } from '../../errors/index.js';
import { isProcessAlive } from '../../home/index.js';
import {
  AlreadyRunningError, checkoutRoot, compileLocal, liveRunState, logFile, readRunState, stateFile,
} from '../../runner/index.js';
import type { Command } from '../command.js';

export const start: Command = {
  summary: 'run a whole stack on this machine in the background (as quarry run does); quarry stop stops it',
  usage: 'quarry start [DIR] [--processes | --docker] [--port N]',
  async run(argv, io) {
    const { values, positionals } = parse(argv);
    if (positionals.length > 1) throw new UsageError(`one stack folder at most, not ${positionals.length}`);
    const { dir, stack } = compileLocal(io.cwd, positionals[0]);
    const file = stateFile(io.env, stack.name);
    const running = liveRunState(file);
    if (running) {
      throw new AlreadyRunningError(`${stack.name} runs already (${running.mode}, pid ${running.pid}, from ${running.dir}); stop it with: quarry stop ${running.dir}`);
    }

    // The runner is `quarry run --detached` in its own session (so that it outlives this
    // command and its terminal), writing to a log file; it records itself in the state file.
    const log = logFile(io.env, stack.name);
    // The units' output may show anything of theirs, env values too: private, like the home.
    mkdirSync(dirname(log), { recursive: true, mode: 0o700 });
    rmSync(log, { force: true });
    const fd = openSync(log, 'w', 0o600);
    const flags = [
      ...(values.processes ? ['--processes'] : []), ...(values.docker ? ['--docker'] : []),
      ...(values.port !== undefined ? ['--port', values.port] : []),
    ];
    const child = spawn(process.execPath, [join(checkoutRoot(), 'bin', 'quarry.js'), 'run', dir, ...flags, '--detached'], {
      cwd: io.cwd, env: io.env, detached: true, stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const pid = child.pid;
    child.unref();
    if (pid === undefined) throw new QuarryError(`could not start the runner of ${stack.name}`);

    // Show the runner's progress (from its log) until the stack serves or the runner ends.
    let shown = 0;
    const showLog = () => {
      if (!existsSync(log)) return;
      const size = statSync(log).size;
      if (size <= shown) return;
      const buffer = Buffer.alloc(size - shown);
      const logFd = openSync(log, 'r');
      try {
        readSync(logFd, buffer, 0, buffer.length, shown);
      } finally {
        closeSync(logFd);
      }
      shown = size;
      io.stderr.write(buffer);
    };
    for (;;) {
      showLog();
      const state = readRunState(file);
      if (state?.pid === pid && state.serving) {
        io.stdout.write(`${stack.name} runs in the background (pid ${pid}, ${state.mode}); its output: ${log}\n`);
        for (const url of state.urls) io.stdout.write(`  ${url}\n`);
        io.stdout.write(`quarry stop ${positionals[0] ?? '.'} stops it\n`);
        return 0;
      }
      if (!isProcessAlive(pid)) {
        showLog();
        throw new QuarryError(`${stack.name} did not start (its output is above, and in ${log})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  },
};

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: { processes: { type: 'boolean' }, docker: { type: 'boolean' }, port: { type: 'string' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
