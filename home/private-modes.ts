import { chmodSync, lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { HomeLayout } from './quarry-home.js';

/** What `makePrivate` changed: the paths whose group's and others' permissions it took off. */
export interface MadePrivate {
  files: string[];
  folders: string[];
}

/**
 * Takes group's and others' permissions off `path` and, for a folder with `recursive`, off
 * everything under it: a folder becomes 0700, a file 0600 (0700 if its owner may run it).
 * Only what has such permissions is changed; links are neither changed nor followed, and
 * neither is anything `skip` says yes to (nor what is under it). A path that is not there is
 * nothing to do.
 */
export function makePrivate(path: string, options: { recursive?: boolean; skip?: (path: string) => boolean } = {},
  into: MadePrivate = { files: [], folders: [] }): MadePrivate {
  if (options.skip?.(path)) return into;
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return into;
    throw err;
  }
  if (!stat.isDirectory() && !stat.isFile()) return into;
  if ((stat.mode & 0o077) !== 0) {
    chmodSync(path, stat.mode & 0o700);
    (stat.isDirectory() ? into.folders : into.files).push(path);
  }
  if (stat.isDirectory() && options.recursive) {
    for (const name of readdirSync(path)) makePrivate(join(path, name), options, into);
  }
  return into;
}

/**
 * Makes private what a home made before its state was private may have left readable by
 * others: the home itself, and every folder and file that may hold env values or secrets
 * (docs/hq.md, "Files under home"): the stacks' releases, plans, env files and control keys,
 * the tasks, HQ's own etcd's data, the keys' folder, the servers' records, the grid file, and
 * `run/` (a detached `quarry run`'s log holds what its units printed).
 * The pushed code is left as it is (each stack's `repo.git`, and what is under `.src/`): its
 * files keep the modes git gives them, which docker builds copy into images; the stack's
 * folder, 0700, keeps others out of it. Returns what was changed, for HQ to say once.
 */
export function makeHomePrivate(home: HomeLayout): MadePrivate {
  const made: MadePrivate = { files: [], folders: [] };
  const code = (path: string) => {
    if (!path.startsWith(`${home.stacksDir}/`)) return false;
    const rest = path.slice(home.stacksDir.length + 1).split('/');
    return rest.length >= 2 && (rest[1] === 'repo.git' || (rest[1] === '.src' && rest.length >= 3));
  };
  makePrivate(home.root, {}, made);
  makePrivate(home.keysDir, {}, made);
  for (const tree of [home.stacksDir, home.tasksDir, home.etcdDir, home.serversDir, home.gridDir, home.runDir]) {
    makePrivate(tree, { recursive: true, skip: code }, made);
  }
  return made;
}
