import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { atomicWrite, HomeLayout, isProcessAlive, quarryHome } from '../home/index.js';

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

export function stateFile(env: NodeJS.ProcessEnv, stack: string): string {
  return new HomeLayout(quarryHome(env)).runStack(stack);
}

/** Where a detached runner's output goes. */
export function logFile(env: NodeJS.ProcessEnv, stack: string): string {
  return new HomeLayout(quarryHome(env)).runLog(stack);
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
  if (isProcessAlive(state.pid)) return state;
  return undefined;
}

export function writeRunState(file: string, state: RunState): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  atomicWrite(file, `${JSON.stringify(state, null, 2)}
`, 0o600);
}

export function removeRunState(file: string, pid = process.pid): void {
  const state = readRunState(file);
  if (state === undefined || state.pid === pid) rmSync(file, { force: true });
}
