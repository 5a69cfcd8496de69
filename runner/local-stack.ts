import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Docker from 'dockerode';
import { compileFolder, type StackSpec } from '../compiler/index.js';
import { QuarryError } from '../errors/index.js';
import { liveRunState, readRunState, stateFile, type RunState } from './state.js';

/** A stack folder given on the command line, compiled (faults as FILE:LINE:COL under it). */
export function compileLocal(cwd: string, dirArg = '.'): { dir: string; stack: StackSpec } {
  const dir = resolve(cwd, dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new QuarryError(`${dirArg}: no such folder`);
  const shown = dirArg.replace(/\/+$/, '');
  return { dir, stack: compileFolder(dir, { prefix: shown === '.' || shown === '' ? '' : `${shown}/` }) };
}

/** The local docker engine, when one answers within a moment; otherwise undefined. */
export async function localDocker(env: NodeJS.ProcessEnv): Promise<Docker | undefined> {
  const docker = new Docker({ socketPath: env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  try {
    await Promise.race([docker.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000).unref())]);
    return docker;
  } catch {
    return undefined;
  }
}

/**
 * The run of the stack in `dir`, found by its folder among the runs recorded on this machine
 * (so that `quarry stop` works even when quarry.yml no longer compiles).
 */
export function runOfFolder(env: NodeJS.ProcessEnv, dir: string): RunState | undefined {
  const folder = dirname(stateFile(env, 'x'));
  if (!existsSync(folder)) return undefined;
  for (const name of readdirSync(folder)) {
    if (!name.endsWith('.json')) continue;
    const state = readRunState(join(folder, name));
    if (state?.dir === dir && liveRunState(join(folder, name))) return state;
  }
  return undefined;
}
