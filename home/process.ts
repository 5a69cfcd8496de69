import { readFileSync } from 'node:fs';

/**
 * Whether process `pid` runs: it exists (another user's counts) and is not a zombie waiting
 * for its parent. A pid file left by a process that died says nothing once this is false.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc here: kill(0) is all we can know
  }
}
