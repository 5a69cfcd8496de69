import { chmodSync, readFileSync, statSync } from 'node:fs';
import { atomicWrite } from '../../home/index.js';

/**
 * A one-line secret HQ keeps in a file of its home (the API token, the digest key): made
 * with `make` on first use and written atomically with mode 0600, so a crash never leaves
 * half of it; read back on every later start. A file that does not hold what `valid` accepts
 * throws `invalid(path)`. A copy others may read is no secret: its mode is put back to 0600.
 */
export function loadOrCreateSecretFile(path: string, make: () => string, valid: (text: string) => boolean, invalid: (path: string) => Error): string {
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text === undefined) {
    const secret = make();
    atomicWrite(path, `${secret}\n`, 0o600);
    return secret;
  }
  const secret = text.trim();
  if (!valid(secret)) throw invalid(path);
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return secret;
}
