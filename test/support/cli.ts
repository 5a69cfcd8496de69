import { execFile, spawn } from 'node:child_process';
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

/**
 * Runs the real `quarry` executable with an environment of the test's choosing: none of the
 * caller's QUARRY_* variables, `QUARRY_HOME` as given (a home with no HQ in it, unless the test
 * says otherwise in `env`), and `input`, when given, on its standard input.
 */
export function quarryWithEnv(argv: string[], home: string, env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_'))) as Record<string, string>;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${repoRoot}bin/quarry.js`, ...argv], {
      env: { ...base, QUARRY_HOME: home, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}
