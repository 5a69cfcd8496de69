import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The mode of a file only its owner may read and write: every state file of a home. */
export const PRIVATE_FILE = 0o600;
/** The mode of a folder only its owner may enter: every folder of a home. */
export const PRIVATE_FOLDER = 0o700;

/**
 * quarry's one way to replace a file: a reader (or a crash at any moment) sees the old content
 * or the new, never a part. A temporary file beside it, fsync, rename over (atomic within a
 * folder), then fsync the folder so that the rename itself survives a power cut.
 *
 * Private by default: the file is created with `mode` (0600 unless told otherwise) from its
 * first byte, so it is never readable by others for a moment (no chmod afterwards), and the
 * rename puts that mode in place of the old file's. What others must read (a public key, a
 * certificate, a server's config files) says so with its own mode. The folder must exist:
 * make it private with `HomeLayout.ensure` (0700).
 */
export function atomicWrite(path: string, data: string | Uint8Array, mode = PRIVATE_FILE): void {
  const dir = dirname(path);
  const temp = temporaryFor(path);
  const fd = openSync(temp, 'wx', mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  syncFolder(dir);
}

/** `atomicWrite` without blocking the event loop (the grid file, the agent's synced files); private by default too. */
export async function atomicWriteAsync(path: string, data: string | Uint8Array, mode = PRIVATE_FILE): Promise<void> {
  const dir = dirname(path);
  const temp = temporaryFor(path);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  syncFolder(dir);
}

/** Makes a folder's entries (a rename, a new file) durable; a file system that refuses is left as it is. */
export function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on a folder; the rename is atomic all the same
  } finally {
    closeSync(fd);
  }
}

/** The file's text, or undefined when there is no file. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Deletes the temporary files that a writer of `path` killed in the middle left behind. */
export async function removeStaleTemporaries(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  await Promise.all(names
    .filter((name) => name.startsWith(prefix) && name.endsWith('.tmp'))
    .map((name) => unlink(join(dirname(path), name)).catch(() => undefined)));
}

function temporaryFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}
