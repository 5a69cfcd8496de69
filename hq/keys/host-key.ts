import { existsSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { atomicWrite, type HomeLayout } from '../../home/index.js';
import { ed25519Pair } from './key-pair.js';
import { fingerprint } from './authorized-keys.js';
import { HostKeyError } from '../errors.js';


/**
 * HQ's SSH host key: made on first start (ed25519) and kept under the home, so that
 * pushers' known_hosts stay valid across restarts. The public half is written beside it.
 */
export function loadHostKey(home: HomeLayout): { privateKey: string; fingerprint: string } {
  const file = home.hostKey;
  if (!existsSync(file)) {
    home.ensure(home.root);
    const pair = ed25519Pair('quarry-hq');
    atomicWrite(file, pair.private, 0o600);
    atomicWrite(`${file}.pub`, `${pair.public}\n`, 0o644);
  }
  const privateKey = readFileSync(file, 'utf8');
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || !parsed.isPrivateKey()) {
    throw new HostKeyError(`${file}: not a private SSH key (${parsed instanceof Error ? parsed.message : 'a public key'}); move it away and HQ makes a new one`);
  }
  return { privateKey, fingerprint: fingerprint(parsed.getPublicSSH()) };
}
