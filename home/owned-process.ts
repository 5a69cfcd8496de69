import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { atomicWrite } from './durable-write.js';
import { isProcessAlive } from './process.js';

const SETPRIV = '/usr/bin/setpriv';

/** A daemon HQ runs for itself (its etcd, its registry), which must not outlive HQ. */
export interface OwnedChild {
  pid: number;
  /** Resolves with the exit code (null after a signal, -1 when it could not start) once it has ended. */
  exited: Promise<number | null>;
  /** Ends it (SIGTERM, SIGKILL after `graceMs`, default 10 s), waits until it has, and removes its pid file. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOwnedOptions {
  binary: string;
  args: string[];
  /** Its standard output and error go here (0600, truncated at start). */
  logPath: string;
  /** Where its pid is kept, with `record`, so that the next start can end one that was left (`endLeftover`). */
  pidFile: string;
  /** More to keep in the pid file: what `isOurs` checks later. */
  record?: Record<string, unknown>;
}

/**
 * Starts a daemon tied to this process: through util-linux's `setpriv --pdeathsig TERM` when
 * there is one, so the kernel signals it when HQ dies (Node has no prctl of its own), and with
 * its pid in `pidFile`. Rejects with the spawn's own error (e.g. ENOENT) when it cannot start.
 */
export async function spawnOwned(options: SpawnOwnedOptions): Promise<OwnedChild> {
  const logFd = openSync(options.logPath, 'w', 0o600);
  let child: ChildProcess;
  try {
    child = existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'TERM', options.binary, ...options.args], { stdio: ['ignore', logFd, logFd] })
      : spawn(options.binary, options.args, { stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  if (child.pid === undefined) throw await spawnError;
  const pid = child.pid;
  atomicWrite(options.pidFile, `${JSON.stringify({ pid, ...options.record })}\n`, 0o600);
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    }
    removePidFile(options.pidFile, pid);
  };
  return { pid, exited, stop };
}

/**
 * Ends the daemon that an HQ which did not stop cleanly left behind, if the pid in `pidFile`
 * is still that daemon (`isOurs` looks at its command line, so a reused pid is never
 * signalled). Returns whether one was ended; the pid file is gone afterwards.
 */
export async function endLeftover(
  pidFile: string,
  isOurs: (argv: string[], record: Record<string, unknown>) => boolean,
  log: (line: string) => void,
  what: string,
): Promise<boolean> {
  let record: Record<string, unknown> & { pid?: unknown };
  try {
    record = JSON.parse(readFileSync(pidFile, 'utf8')) as typeof record;
  } catch {
    return false;
  }
  const pid = record.pid;
  let ended = false;
  if (typeof pid === 'number' && isOurs(commandLine(pid), record)) {
    log(`ending the ${what} left over by an HQ that did not stop cleanly (pid ${pid})`);
    signal(pid, 'SIGTERM');
    const until = Date.now() + 10_000;
    while (isProcessAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (isProcessAlive(pid)) signal(pid, 'SIGKILL');
    while (isProcessAlive(pid)) await new Promise((r) => setTimeout(r, 50));
    ended = true;
  }
  rmSync(pidFile, { force: true });
  return ended;
}

/** A process's arguments (empty when it is gone). */
function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function removePidFile(pidFile: string, pid: number): void {
  try {
    const record = JSON.parse(readFileSync(pidFile, 'utf8')) as { pid?: unknown };
    if (record.pid !== pid) return;
  } catch {
    return;
  }
  rmSync(pidFile, { force: true });
}
