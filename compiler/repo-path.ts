import { normalize } from './source-tree.js';

/**
 * A path a user names in quarry.yml, a topology or an element.yml (`build:`, `topology:`,
 * `main:`), checked before anything looks it up: relative, with no `..`. A path that leaves
 * the repo must never reach the disk, or a push could learn which files exist on HQ's
 * machine from whether the compiler says "does not exist".
 *
 * `folder` is what the path is relative to ('' for the repo's root); `like` an example of a
 * good value for the message. Returns the normalized path, or the fault to report.
 */
export function checkRepoPath(path: string, what: string, like: string, folder = ''): { path: string } | { fault: string } {
  const base = folder === '' ? `the repo's root` : `${folder}/`;
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:/.test(path)) {
    return { fault: `${what} '${path}' must be relative to ${base} (like ${like}), not an absolute path` };
  }
  // Backslashes too: harmless on HQ's Linux, but a path that reads as an escape is refused.
  if (path.split(/[/\\]/).includes('..')) {
    return { fault: `${what} '${path}' must be inside ${folder === '' ? 'the repo' : `${folder}/`} (no '..'; like ${like})` };
  }
  return { path: normalize(path) };
}
