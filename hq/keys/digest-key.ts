import { randomBytes } from 'node:crypto';
import type { HomeLayout } from '../../home/index.js';
import { DigestKeyFileError } from '../errors.js';
import { loadOrCreateSecretFile } from './secret-file.js';

/**
 * The secret key of HQ's unit digests (plan/model.ts `DigestOptions`): a container's
 * `quarry.digest` label covers the stack's env, and anyone who may `docker inspect` reads it,
 * so it is an HMAC under this key, never a plain hash a short env value could be guessed from.
 * Made on first use (32 random bytes, hex) at `<home>/keys/digest.key`, mode 0600 in a 0700
 * folder, atomically; the same from then on. The release records hold digests made with it:
 * a new key makes every node and element look changed, and the next push redeploys them all.
 */
export function loadOrCreateDigestKey(home: HomeLayout): string {
  home.ensure(home.keysDir);
  return loadOrCreateSecretFile(home.digestKey, () => randomBytes(32).toString('hex'), (key) => /^[0-9a-f]{64}$/.test(key),
    (path) => new DigestKeyFileError(`${path} does not hold a digest key (64 hex digits); delete it and start HQ again to make a new one ` +
      '(the next push then redeploys every node and element once)'));
}
