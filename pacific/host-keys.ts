import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { PacificError } from './errors.js';

/**
 * SSH host keys quarry makes for the servers it creates (DigitalOcean: handed in with the
 * cloud-init user data, so the key is known before the server first answers), and the
 * words to compare and show them: the `TYPE BASE64` line and its SHA256 fingerprint as
 * `ssh-keygen -l` prints it.
 */
export interface HostKeyPair {
  /** OpenSSH form (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted: what sshd reads. */
  privateKey: string;
  /** `ssh-ed25519 BASE64 COMMENT` */
  publicKey: string;
}

/** An SSH wire string: uint32 length, then the bytes. */
function wire(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/**
 * A new ed25519 host key pair from node's crypto, written in OpenSSH's own format
 * (PROTOCOL.key: `openssh-key-v1`, cipher and KDF `none`). Only the caller holds the private
 * half: nothing here writes it anywhere.
 */
export function newHostKey(comment: string): HostKeyPair {
  if (/[\r\n]/.test(comment)) throw new PacificError('a host key comment must be one line');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  if (seed.length !== 32 || pub.length !== 32) throw new PacificError('node made an ed25519 key of an unexpected length');
  const blob = Buffer.concat([wire('ssh-ed25519'), wire(pub)]);
  const check = randomBytes(4);
  let section = Buffer.concat([check, check, wire('ssh-ed25519'), wire(pub), wire(Buffer.concat([seed, pub])), wire(comment)]);
  // Padded with 1, 2, 3, … to the cipher's block size (8 for `none`).
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    wire('none'), wire('none'), wire(''),
    Buffer.from([0, 0, 0, 1]),
    wire(blob),
    wire(section),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  section.fill(0);
  seed.fill(0);
  return {
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
  };
}

/** `TYPE BASE64` of a public key line (its comment dropped). */
export function hostKeyOf(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** Whether two public key lines are the same key (comments aside). */
export function sameHostKey(a: string, b: string): boolean {
  return hostKeyOf(a) === hostKeyOf(b);
}

/** `SHA256:…` of a public key line, as `ssh-keygen -l` prints it (base64 without padding). */
export function hostKeyFingerprint(line: string): string {
  const blob = Buffer.from(line.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The host key algorithms to ask a server for when its key is pinned: only the pinned key's
 * own, so that a server that also has keys of other types shows the pinned one (an RSA key is
 * signed as rsa-sha2-512, rsa-sha2-256 or ssh-rsa). Undefined: ssh2's defaults.
 */
export function hostKeyAlgorithms(pinned: string | null): string[] | undefined {
  if (pinned === null) return undefined;
  const type = hostKeyOf(pinned).split(' ')[0] ?? '';
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-dss)$/.test(type) ? [type] : undefined;
}
