import { open, mkdir, rmdir, stat } from 'node:fs/promises';

/** The lines around quarry's block in `/etc/hosts`. */
export const HOSTS_BEGIN = '# quarry begin: the grid\'s servers (quarry keeps this block; edits inside it are lost)';
export const HOSTS_END = '# quarry end';

/**
 * `/etc/hosts` with quarry's block set to `block` (lines of `ip name`), every other line kept
 * as it was: the block replaces the old one where it stood, or is appended. An empty block
 * removes it (markers included). Pure.
 */
export function withHostsBlock(current: string, block: string): string {
  const lines = current.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const begin = lines.indexOf(HOSTS_BEGIN);
  const end = begin < 0 ? -1 : lines.indexOf(HOSTS_END, begin + 1);
  const body = block.split('\n').filter((l) => l.trim() !== '');
  const ours = body.length === 0 ? [] : [HOSTS_BEGIN, ...body, HOSTS_END];
  let out: string[];
  if (begin >= 0 && end > begin) out = [...lines.slice(0, begin), ...ours, ...lines.slice(end + 1)];
  else if (begin >= 0) out = [...lines.slice(0, begin), ...ours]; // a block cut short: it ran to the end
  else out = [...lines, ...ours];
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** How long a lock may be held before another writer takes it over (its holder died). */
const STALE_LOCK_MS = 10_000;

/**
 * Writes quarry's block into the hosts file at `path` in place, under a lock (a folder made
 * in `lockDir`, which every writer on the machine shares): inside a container `/etc/hosts`
 * is a bind-mounted file, and renaming a file over a mount point fails, so the file is
 * rewritten where it is: the whole text in one write at offset 0, then cut to its length.
 * Returns whether the file changed.
 */
export async function writeHostsBlock(path: string, block: string, lockDir: string): Promise<boolean> {
  const release = await lock(`${lockDir}/hosts.lock`);
  try {
    const handle = await open(path, 'r+');
    try {
      const current = await handle.readFile('utf8');
      const next = withHostsBlock(current, block);
      if (next === current) return false;
      const bytes = Buffer.from(next);
      await handle.write(bytes, 0, bytes.length, 0);
      await handle.truncate(bytes.length);
      await handle.sync();
      return true;
    } finally {
      await handle.close();
    }
  } finally {
    await release();
  }
}

async function lock(dir: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 2 * STALE_LOCK_MS;
  for (;;) {
    try {
      await mkdir(dir);
      return () => rmdir(dir).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        await mkdir(dir.slice(0, dir.lastIndexOf('/')), { recursive: true });
        continue;
      }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(dir).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS || Date.now() > deadline) await rmdir(dir).catch(() => undefined);
      else await new Promise((r) => setTimeout(r, 20));
    }
  }
}
