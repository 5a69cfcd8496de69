import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Wiring } from '../../runtime/index.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ElementProcess {
  child: ChildProcess;
  ready: { endpoints: Record<string, string>; incarnation: string };
  exited: Promise<number | null>;
}

/** Starts an element process through the launcher (runtime/main.ts) and waits for its ready line. */
export async function spawnElement(
  t: { teardown(fn: () => unknown): void },
  code: string,
  wiring: Wiring,
  env: NodeJS.ProcessEnv = {},
): Promise<ElementProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/main.ts', code, '--wiring', JSON.stringify(wiring)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<ElementProcess['ready']>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { quarry?: string } & ElementProcess['ready'];
        if (msg.quarry === 'ready') resolve(msg);
      } catch {
        // the element's own output
      }
    });
    child.once('exit', (code) => reject(new Error(`element ${code} exited with ${code} before it was ready`)));
  });
  return { child, ready, exited };
}
