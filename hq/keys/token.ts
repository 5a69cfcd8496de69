import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { HomeLayout } from '../../home/index.js';
import { TokenFileError } from '../errors.js';
import { loadOrCreateSecretFile } from './secret-file.js';


/**
 * HQ's API token: made on first start (32 random bytes, base64url) and written to
 * `<home>/token` with mode 0600, atomically, so a crash never leaves half a token; read back
 * on every later start. Delete the file and restart HQ to change it.
 */
export function loadOrCreateToken(home: HomeLayout): string {
  home.ensure(home.root);
  return loadOrCreateSecretFile(home.token, () => randomBytes(32).toString('base64url'), (token) => /^[A-Za-z0-9_-]{16,}$/.test(token),
    (path) => new TokenFileError(`${path} does not hold an API token; delete it and start HQ again to make a new one`));
}

/** Compares a presented token with HQ's in constant time (whatever the lengths). */
export function tokenMatches(presented: string, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(token));
}
