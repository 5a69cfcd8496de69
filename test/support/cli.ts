import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../cli/index.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `quarry …` in this process, capturing what it writes. */
export async function quarry(argv: string[], cwd = repoRoot): Promise<{ code: number; stdout: string; stderr: string }> {
  const capture = () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (chunk: Buffer) => { text += chunk.toString(); });
    return { stream, text: () => text };
  };
  const out = capture();
  const err = capture();
  const code = await runCli(argv, { stdout: out.stream, stderr: err.stream, cwd, env: process.env });
  return { code, stdout: out.text(), stderr: err.text() };
}

/** Runs the real `quarry` executable as a user would, in a child process. */
export function quarryProcess(argv: string[], cwd = repoRoot): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${repoRoot}bin/quarry.js`, ...argv], { cwd }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}
