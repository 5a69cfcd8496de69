import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/**
 * What a running `quarry run` (foreground, or started by `quarry start`) tells other quarry
 * commands on this machine: one JSON file per stack under `$QUARRY_HOME/run/stacks/`. It lets
 * a second run of the same stack say that it runs already, and `quarry stop` find the runner.
 * The runner writes it when it starts and removes it when everything it started is gone.
 */
export interface RunState {
  stack: string;
  /** The stack's folder, absolute. */
  dir: string;
  /** The runner's process id; with `quarry start`, also its process group. */
  pid: number;
  detached: boolean;
  mode: 'docker' | 'processes';
  /** Set once every unit is up. */
  serving: boolean;
  urls: string[];
  routerPort?: number;
  startedAt: string;
}

/** `QUARRY_HOME`, else `/home/quarry` for root, else `~/.quarry` (as HQ decides it). */
export function quarryHome(env: NodeJS.ProcessEnv): string {
  if (env.QUARRY_HOME) return resolve(env.QUARRY_HOME);
  if (process.getuid?.() === 0) return '/home/quarry';
  return join(homedir(), '.quarry');
}

export function stateFile(env: NodeJS.ProcessEnv, stack: string): string {
  return join(quarryHome(env), 'run', 'stacks', `${stack}.json`);
}

/** Where a detached runner's output goes. */
export function logFile(env: NodeJS.ProcessEnv, stack: string): string {
  return join(quarryHome(env), 'run', 'stacks', `${stack}.log`);
}

export function readRunState(file: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunState;
  } catch {
    return undefined;
  }
}

/** The state of a runner that is alive; a file left by one that died is removed. */
export function liveRunState(file: string): RunState | undefined {
  const state = readRunState(file);
  if (state === undefined) return undefined;
  if (isAlive(state.pid)) return state;
  return undefined;
}

export function writeRunState(file: string, state: RunState): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
}

export function removeRunState(file: string, pid = process.pid): void {
  const state = readRunState(file);
  if (state === undefined || state.pid === pid) rmSync(file, { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
