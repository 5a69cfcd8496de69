import { randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { syncFolder, type HomeLayout } from '../../home/index.js';

/**
 * `stacks/<stack>/src` is a symbolic link to one folder under `stacks/<stack>/.src/`. A
 * push is checked out into a fresh folder there; once accepted, a new link is renamed over
 * `src`, which swaps the code in one atomic step (a folder cannot be renamed over a
 * non-empty one). Readers see the old code or the new, never a mix.
 */
export function freshSrcFolder(home: HomeLayout, stack: string, sha: string): string {
  const versions = home.ensure(home.srcVersions(stack));
  return join(versions, `${sha.slice(0, 12)}-${randomBytes(3).toString('hex')}`);
}

/** Makes `folder` the stack's `src`, and removes the folders no longer pointed at. */
export function publishSrc(home: HomeLayout, stack: string, folder: string): void {
  const stackDir = home.stackDir(stack);
  const link = home.src(stack);
  const temp = `${link}.${randomBytes(4).toString('hex')}.tmp`;
  symlinkSync(relative(stackDir, folder), temp);
  try {
    renameSync(temp, link);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  syncFolder(stackDir);
  const versions = home.srcVersions(stack);
  for (const name of readdirSync(versions)) {
    if (name !== basename(folder)) rmSync(join(versions, name), { recursive: true, force: true });
  }
}

/** The folder `src` points at now, if any. */
export function currentSrc(home: HomeLayout, stack: string): string | undefined {
  try {
    return join(home.stackDir(stack), readlinkSync(home.src(stack)));
  } catch {
    return undefined;
  }
}
