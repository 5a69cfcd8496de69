import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { atomicWrite, type HomeLayout } from '../../home/index.js';
import { TokenFileError } from '../errors.js';


/**
 * HQ's API token: made on first start (32 random bytes, base64url) and written to
 * `<home>/token` with mode 0600, atomically, so a crash never leaves half a token; read back
 * on every later start. Delete the file and restart HQ to change it.
 */
export function loadOrCreateToken(home: HomeLayout): string {
  home.ensure(home.root);
  const path = home.token;
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text === undefined) {
    const token = randomBytes(32).toString('base64url');
    atomicWrite(path, `${token}\n`, 0o600);
    return token;
  }
  const token = text.trim();
  if (!/^[A-Za-z0-9_-]{16,}$/.test(token)) {
    throw new TokenFileError(`${path} does not hold an API token; delete it and start HQ again to make a new one`);
  }
  // A token readable by others is no secret: put the mode back (a copy may have loosened it).
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return token;
}

/** Compares a presented token with HQ's in constant time (whatever the lengths). */
export function tokenMatches(presented: string, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(token));
}
