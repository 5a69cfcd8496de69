import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** git's env for a benchmark's pushes: its own key (no agent, no known hosts) and an author. */
export function benchGitEnv(keyFile: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_SSH_COMMAND: `ssh -i ${keyFile} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR`,
    GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@localhost', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@localhost',
  };
}

/**
 * A copy of the example stack (stacks-example/docsearch) at `repo`, named by the folder it is
 * pushed to (no `name:`), answering on `domain`; `edit` changes its quarry.yml further, and
 * `editTopology` its topology.yml.
 */
export function exampleCopy(repo: string, domain: string, edit: (yml: string) => string = (yml) => yml, editTopology?: (yml: string) => string): string {
  cpSync(join(ROOT, 'stacks-example', 'docsearch'), repo, { recursive: true });
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, edit(readFileSync(yml, 'utf8').replace(/^name:.*\n/m, '').replace('docsearch.localhost', domain)));
  if (editTopology) {
    const topology = join(repo, 'topology.yml');
    writeFileSync(topology, editTopology(readFileSync(topology, 'utf8')));
  }
  return repo;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Runs a program and resolves with its stdout, trimmed; rejects with its stderr. Never blocks
 * the event loop: HQ, which a push or a server talks to, runs in the benchmark's process.
 */
export const run = (file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => new Promise<string>((resolve, reject) => {
  execFile(file, args, { ...options, maxBuffer: 16 << 20 }, (err, out, errOut) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${errOut || err.message}`)) : resolve(out.trim())));
});
export const dockerCli = (args: string[]) => run('/usr/bin/docker', args);

/** Polls `probe` every `everyMs` until it gives a value (a throw counts as none); fails after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, everyMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** GET `url` (a fresh connection), optionally with a Host header: status 0 and the error when it did not answer. */
export function httpGet(url: string, options: { host?: string; timeoutMs?: number } = {}): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: options.timeoutMs ?? 2000, ...(options.host && { headers: { Host: options.host } }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => resolve({ status: 0, body, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ status: 0, body: '', error: err.message }));
    req.end();
  });
}

/** Removes every container, volume and the network of a docker-provider fleet (as test/pacific/fleet.ts does). */
export async function removeFleet(fleet: string): Promise<void> {
  const list = async (args: string[]) => (await dockerCli(args).catch(() => '')).split('\n').filter(Boolean);
  const ids = await list(['ps', '-aq', '--filter', `label=quarry.pacific.fleet=${fleet}`]);
  if (ids.length > 0) await dockerCli(['rm', '-f', ...ids]).catch(() => '');
  const volumes = await list(['volume', 'ls', '-q', '--filter', `name=quarry-server-${fleet}-`]);
  if (volumes.length > 0) await dockerCli(['volume', 'rm', '-f', ...volumes]).catch(() => '');
  for (const network of await list(['network', 'ls', '-q', '--filter', `label=quarry.pacific.fleet=${fleet}`])) await dockerCli(['network', 'rm', network]).catch(() => '');
}

/** Removes a stack's containers and its network from this machine's engine. */
export async function removeStackContainers(docker: Docker, stack: string): Promise<void> {
  for (const info of await docker.listContainers({ all: true, filters: { label: [`quarry.stack=${stack}`] } })) {
    await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
  }
  await docker.getNetwork(`quarry-${stack}`).remove().catch(() => undefined);
}

/** Removes a stack's images from this machine's engine by tag, never by id: the same build under another stack's tag (a test's) keeps its image. */
export async function removeStackImages(docker: Docker, stack: string): Promise<void> {
  const images = await docker.listImages({ filters: { reference: [`quarry/${stack}-*`] } });
  for (const tag of images.flatMap((i) => i.RepoTags ?? []).filter((x) => x.startsWith(`quarry/${stack}-`))) {
    await docker.getImage(tag).remove().catch(() => undefined);
  }
}
