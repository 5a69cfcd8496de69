import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CheckoutError } from '../errors.js';


/** The variables git sets in a pre-receive hook so that the pushed objects can be read. */
export const QUARANTINE_VARIABLES = ['GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_QUARANTINE_PATH'] as const;

/**
 * Writes the tree of a pushed commit into an empty folder: `git archive | tar -x`. Before
 * the ref moves, the pushed objects live in a quarantine folder, so the variables the hook
 * saw are given to git here too (only paths inside the repo's own objects are taken).
 */
export async function exportCommit(repo: string, sha: string, quarantine: Record<string, string>, dest: string): Promise<void> {
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) throw new CheckoutError(`'${sha}' is not a commit id`);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, GIT_DIR: repo };
  const objects = resolve(repo, 'objects');
  for (const name of QUARANTINE_VARIABLES) {
    const value = quarantine[name];
    if (value === undefined) continue;
    const paths = value.split(':');
    if (!paths.every((p) => within(objects, resolve(repo, p)))) throw new CheckoutError(`${name} points outside the stack's repository`);
    env[name] = value;
  }
  mkdirSync(dest, { recursive: true });
  await new Promise<void>((done, fail) => {
    const archive = spawn('git', ['archive', '--format=tar', sha], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-f', '-', '-C', dest], { stdio: ['pipe', 'ignore', 'pipe'] });
    let errors = '';
    archive.stderr.on('data', (c: Buffer) => { errors += c.toString(); });
    tar.stderr.on('data', (c: Buffer) => { errors += c.toString(); });
    archive.stdout.pipe(tar.stdin);
    tar.stdin.on('error', () => undefined);
    let pending = 2;
    let failed = false;
    const exited = (what: string) => (code: number | null) => {
      if (code !== 0) failed = true;
      if (--pending > 0) return;
      if (failed) fail(new CheckoutError(`could not check out ${sha.slice(0, 12)} (${what}): ${errors.trim()}`));
      else done();
    };
    archive.on('error', fail);
    tar.on('error', fail);
    archive.on('close', exited('git archive'));
    tar.on('close', exited('tar'));
  });
  refuseOutwardLinks(dest);
}

/**
 * The pushed code is read by HQ (docker build contexts follow links), so a symbolic link
 * that leads out of the checkout would hand HQ's own files to an image. Such pushes are
 * refused, naming the link.
 */
function refuseOutwardLinks(root: string): void {
  const bad: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) {
        const target = readlinkSync(path);
        const to = resolve(dirname(path), target);
        if (isAbsolute(target) || !within(root, to)) {
          bad.push(`${relative(root, path)}: a symbolic link out of the repository ('${target}') is not allowed`);
        } else if (within(to, path)) {
          // A link to a folder that holds it makes a loop that a build context walk never leaves.
          bad.push(`${relative(root, path)}: a symbolic link to a folder that holds it ('${target}') is a loop, and not allowed`);
        }
      } else if (stat.isDirectory()) {
        walk(path);
      }
    }
  };
  walk(root);
  if (bad.length) throw new CheckoutError(bad.join('\n'));
}

function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
