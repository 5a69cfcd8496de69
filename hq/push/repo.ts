import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { atomicWrite, syncFolder, type HomeLayout } from '../../home/index.js';
import { HOOK_PROGRAM, hookScript } from './hook-program.js';
import { DEFAULT_MAX_PUSH_SIZE } from '../config.js';

const run = promisify(execFile);

/** Writes the shared hook program when it is missing or out of date. */
export function installHookProgram(home: HomeLayout): void {
  writeIfChanged(home, home.hookProgram, HOOK_PROGRAM, 0o644);
}

/**
 * The stack's bare repository, made on its first push (`git init --bare` in a temporary
 * folder, then renamed into place, so that a half-made repo is never seen), with quarry's
 * pre-receive hook (re)installed and git's `receive.maxInputSize` set to `maxPushSize` (bytes;
 * on every push, so a changed config holds for existing repos too): git refuses a bigger pack.
 */
export async function ensureRepo(home: HomeLayout, stack: string, maxPushSize = DEFAULT_MAX_PUSH_SIZE): Promise<string> {
  const repo = home.repo(stack);
  if (!existsSync(repo)) {
    const parent = home.ensure(dirname(repo));
    const temp = join(parent, `.repo.git.${randomBytes(4).toString('hex')}`);
    try {
      await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', temp]);
      // Deleting the deployed branch would leave the stack without code; the hook refuses it
      // too, but this stops it even if the hook is gone.
      await run('git', ['--git-dir', temp, 'config', 'receive.denyDeletes', 'true']);
      // `git push -o replace=SERVICE` reaches the hook only when the repo offers push options.
      await run('git', ['--git-dir', temp, 'config', 'receive.advertisePushOptions', 'true']);
      renameSync(temp, repo);
      syncFolder(parent);
    } catch (err) {
      rmSync(temp, { recursive: true, force: true });
      if (!existsSync(repo)) throw err;
    }
  }
  await run('git', ['--git-dir', repo, 'config', 'receive.maxInputSize', String(maxPushSize)]);
  writeIfChanged(home, join(repo, 'hooks', 'pre-receive'), hookScript(process.execPath, home.hookProgram), 0o755);
  return repo;
}

function writeIfChanged(home: HomeLayout, file: string, content: string, mode: number): void {
  try {
    if (readFileSync(file, 'utf8') === content) return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  home.ensure(dirname(file));
  atomicWrite(file, content, mode);
}
