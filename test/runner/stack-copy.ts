import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';

/**
 * A copy of the docsearch example under a stack name of its own, so that runs of it never
 * meet another test's (or HQ's) containers, and its processes can be told apart by folder.
 */
export function exampleCopy(t: { teardown(fn: () => unknown): void }, name: string): { dir: string; home: string } {
  const root = mkdtempSync(join(tmpdir(), `quarry-run-${name}-`));
  const dir = join(root, 'docsearch');
  cpSync(join(repoRoot, 'stacks-example', 'docsearch'), dir, { recursive: true });
  const yml = join(dir, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(/^name: docsearch$/m, `name: ${name}`));
  const home = join(root, 'home');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return { dir, home };
}

/** Process ids whose command line or working folder is under `folder` (what a run left behind). */
export function processesUnder(folder: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${entry}/cwd`);
      } catch {
        // gone, or not ours to read
      }
      if (cmdline.includes(folder) || cwd.startsWith(folder)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

export interface QuarryChild {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** The real `quarry` executable as a child process, its output collected. */
export function quarryChild(argv: string[], env: NodeJS.ProcessEnv): QuarryChild {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'quarry.js'), ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits until the runner says the stack is up, and gives its local port; fails if it ends first. */
export async function untilUp(run: QuarryChild): Promise<number> {
  let ended = false;
  void run.exited.then(() => { ended = true; });
  for (;;) {
    const m = /is up \(\w+\); web through 127\.0\.0\.1:(\d+)/.exec(run.stderr());
    if (m) return Number(m[1]);
    if (ended) throw new Error(`quarry run ended before the stack was up:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
