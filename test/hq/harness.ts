import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAuthorizedKey, startHq, type Hq, type HqOptions } from '../../hq/index.js';
import { HomeLayout } from '../../home/index.js';
import { listContainers, removeContainer } from '../../launcher/index.js';
import { repoRoot } from '../support/cli.js';
import { docker } from '../support/docker.js';

export interface Ran { code: number; stdout: string; stderr: string }

/** Runs a program, never throwing on a non-zero exit. */
export function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A fresh ed25519 key pair made by ssh-keygen: the private key's path. */
export async function makeKey(dir: string, name: string): Promise<string> {
  const file = join(dir, name);
  const made = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', file]);
  if (made.code !== 0) throw new Error(`ssh-keygen: ${made.stderr}`);
  return file;
}

export function uniqueStack(base: string): string {
  return `${base}-${randomBytes(3).toString('hex')}`;
}

/** An HQ on a free port with a fresh home, and one key authorised to push. */
export interface TestHq {
  hq: Hq;
  home: HomeLayout;
  dir: string;
  key: string;
  log: string[];
  close(): Promise<void>;
}

export async function startTestHq(options: Partial<HqOptions> = {}): Promise<TestHq> {
  const dir = tempDir('quarry-hq-');
  const home = new HomeLayout(join(dir, 'home'));
  const key = await makeKey(dir, 'pusher');
  addAuthorizedKey(home, readFileSync(`${key}.pub`, 'utf8'), 'pusher.pub');
  const log: string[] = [];
  const hq = await startHq({ home: home.root, sshPort: 0, host: '127.0.0.1', log: (line) => log.push(line), ...options });
  return {
    hq, home, dir, key, log,
    async close() {
      await hq.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Environment for the real git client to reach HQ with a key. */
export function gitEnv(key: string, port: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_SSH_COMMAND: `ssh -i ${key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR -p ${port}`,
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 'test@example.com',
  };
}

/** `ssh` itself, for what git would not send (a shell, another command). */
export function ssh(key: string, port: number, args: string[], user = 'quarry'): Promise<Ran> {
  return run('ssh', ['-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-p', String(port), `${user}@127.0.0.1`, ...args], { input: '' });
}

/**
 * A working copy of the docsearch example as its own git repo, with `name:` removed from
 * quarry.yml so that the stack takes the name it is pushed to.
 */
export async function docsearchRepo(dir: string): Promise<string> {
  const repo = join(dir, `work-${randomBytes(3).toString('hex')}`);
  cpSync(join(repoRoot, 'stacks-example', 'docsearch'), repo, { recursive: true });
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(/^name:.*\n/m, ''));
  await commitAll(repo, 'docsearch', true);
  return repo;
}

export async function commitAll(repo: string, message: string, init = false): Promise<string> {
  const env = gitEnv('/dev/null', 0);
  if (init) await must(run('git', ['init', '-q', '-b', 'main'], { cwd: repo, env }));
  await must(run('git', ['add', '-A'], { cwd: repo, env }));
  await must(run('git', ['commit', '-q', '-m', message], { cwd: repo, env }));
  return (await must(run('git', ['rev-parse', 'HEAD'], { cwd: repo, env }))).stdout.trim();
}

export async function push(t: TestHq, repo: string, stack: string, refspec = 'main', key = t.key): Promise<Ran> {
  return run('git', ['push', '--porcelain', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${stack}`, refspec], { cwd: repo, env: gitEnv(key, t.hq.sshPort) });
}

export async function must(ran: Promise<Ran>): Promise<Ran> {
  const r = await ran;
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

/** The commit a branch of a bare repo points at, or '' when it has none. */
export async function refOf(repoGit: string, ref = 'refs/heads/main'): Promise<string> {
  const r = await run('git', ['--git-dir', repoGit, 'rev-parse', '--verify', '--quiet', ref]);
  return r.code === 0 ? r.stdout.trim() : '';
}

/** The images built for a stack (tags `quarry/<stack>-*`). */
export async function stackImages(stack: string): Promise<string[]> {
  const images = await docker.listImages({ filters: { reference: [`quarry/${stack}-*`] } });
  return images.flatMap((i) => i.RepoTags ?? []).filter((tag) => tag.startsWith(`quarry/${stack}-`));
}

/** Everything a small-mode test's stacks left on the local engine: containers, networks, images. */
export async function removeStacks(stacks: readonly string[]): Promise<void> {
  for (const stack of stacks) {
    for (const c of await listContainers(docker, stack)) await removeContainer(docker, c.id, 1);
    await docker.getNetwork(`quarry-${stack}`).remove().catch(() => undefined);
    await removeStackImages(stack);
  }
}

export async function removeStackImages(stack: string): Promise<void> {
  for (const tag of await stackImages(stack)) {
    try {
      await docker.getImage(tag).remove({ force: true });
    } catch {
      // already gone
    }
  }
}
