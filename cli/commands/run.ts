import { parseArgs } from 'node:util';
import { UsageError } from '../../errors/index.js';
import {
  AlreadyRunningError, compileLocal, liveRunState, localDocker, removeRunState, runStack, stateFile, writeRunState,
  type RunMode, type RunState,
} from '../../runner/index.js';
import type { Command } from '../command.js';

export const run: Command = {
  summary: 'run a whole stack on this machine in the foreground (containers, or --processes); Ctrl-C stops it',
  usage: 'quarry run [DIR] [--processes | --docker] [--port N] [--no-color] [--no-autoscale]',
  async run(argv, io) {
    const { values, positionals } = parse(argv);
    if (positionals.length > 1) throw new UsageError(`one stack folder at most, not ${positionals.length}`);
    if (values.processes && values.docker) throw new UsageError('give --processes or --docker, not both');
    const port = values.port === undefined ? 8000 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number (0 picks a free one), not '${values.port}'`);
    const { dir, stack } = compileLocal(io.cwd, positionals[0]);
    const say = (line: string) => io.stderr.write(`quarry: ${line}\n`);

    const file = stateFile(io.env, stack.name);
    const running = liveRunState(file);
    if (running) {
      throw new AlreadyRunningError(`${stack.name} runs already (${running.mode}, pid ${running.pid}, from ${running.dir}, since ${running.startedAt}); ` +
        `stop it with: quarry stop ${running.dir}`);
    }
    const docker = await localDocker(io.env);
    let mode: RunMode;
    if (values.processes) mode = 'processes';
    else if (values.docker || docker) mode = 'docker';
    else {
      say('no docker engine answers here: running the stack as processes (--processes)');
      mode = 'processes';
    }

    const state: RunState = {
      stack: stack.name, dir, pid: process.pid, detached: values.detached === true, mode, serving: false, urls: [],
      startedAt: new Date().toISOString(),
    };
    writeRunState(file, state);

    // Ctrl-C (or SIGTERM from quarry stop) while starting aborts the start; once running, it stops the stack.
    const starting = new AbortController();
    let stopRequested: (() => void) | undefined;
    const stopped = new Promise<void>((resolve) => { stopRequested = resolve; });
    let signals = 0;
    const onSignal = () => {
      if (signals++ > 0) return void say('still stopping: units get up to 10 s to finish their work');
      say('stopping …');
      starting.abort();
      stopRequested?.();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      say(`running ${stack.name} from ${dir} as ${mode === 'docker' ? 'containers' : 'processes'}`);
      const color = !values['no-color'] && !values.detached && (io.stdout as NodeJS.WriteStream).isTTY === true && !io.env.NO_COLOR;
      const stackRun = await runStack({
        dir, stack, mode, port, ...(docker && { docker }), out: io.stdout, color, say, env: io.env, signal: starting.signal,
        ...(values['no-autoscale'] && { autoscale: false as const }),
      });
      writeRunState(file, { ...state, serving: true, urls: stackRun.urls, routerPort: stackRun.routerPort });
      const lines = [`${stack.name} is up (${mode}); web through 127.0.0.1:${stackRun.routerPort}`];
      for (const [i, url] of stackRun.urls.entries()) lines.push(`  ${url}`, `  ${stackRun.curls[i]}`);
      lines.push(values.detached ? `quarry stop ${dir} stops it` : 'Ctrl-C stops it');
      for (const line of lines) say(line);

      await stopped;
      await stackRun.stop(10_000);
      say(`${stack.name} stopped; nothing of it is left running`);
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      removeRunState(file);
    }
  },
};

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        processes: { type: 'boolean' },
        docker: { type: 'boolean' },
        port: { type: 'string' },
        'no-color': { type: 'boolean' },
        /** Load shards stay at their min: no autoscale in this run. */
        'no-autoscale': { type: 'boolean' },
        /** Set by `quarry start` for the background runner it starts. */
        detached: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
