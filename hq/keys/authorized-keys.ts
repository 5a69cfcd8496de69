import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { atomicWrite, HomeLayout } from '../../home/index.js';
import { PublicKeyError } from '../errors.js';

const { utils } = ssh2;


/** One authorised key: its type, its public blob (the SSH wire form) and its comment. */
export interface AuthorizedKey {
  type: string;
  blob: Buffer;
  comment: string;
  /** The parsed key, to verify a client's signature with. */
  key: ssh2.ParsedKey;
}

/** The OpenSSH fingerprint of a public key blob: `SHA256:` and unpadded base64. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Reads one OpenSSH public key line (`ssh-ed25519 AAAA… comment`). Lines with options
 * before the key (`from=…`, `command=…`) are not taken: quarry would not honour the
 * options, and a key must not get more than its line says.
 */
export function parsePublicKeyLine(line: string): AuthorizedKey | Error {
  const text = line.trim();
  if (!/^(ssh-|ecdsa-|sk-)/.test(text)) return new Error('not an OpenSSH public key line (TYPE BASE64 [COMMENT])');
  const parsed = utils.parseKey(text);
  if (parsed instanceof Error) return parsed;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) return new Error('no key in it');
  if (key.isPrivateKey()) return new Error('a private key');
  return { type: key.type, blob: key.getPublicSSH(), comment: key.comment ?? '', key };
}

/** Every usable key of an authorized_keys file; a missing file authorises nobody. */
export function readAuthorizedKeys(file: string): AuthorizedKey[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const keys: AuthorizedKey[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.trim().startsWith('#')) continue;
    const key = parsePublicKeyLine(line);
    if (!(key instanceof Error)) keys.push(key);
  }
  return keys;
}

/** Whether a key a client offers (type and blob) is one of the authorised ones. */
export function isAuthorized(keys: AuthorizedKey[], offered: { algo: string; data: Buffer }): AuthorizedKey | undefined {
  return keys.find((k) => k.type === offered.algo && k.blob.length === offered.data.length && timingSafeEqual(k.blob, offered.data));
}

/**
 * Authorises a public key to push: checks the text is exactly one OpenSSH public key and
 * appends it, unless it is there already. The file is rewritten atomically.
 */
export function addAuthorizedKey(home: HomeLayout, text: string, source: string): { added: boolean; fingerprint: string; comment: string } {
  const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  if (/PRIVATE KEY-----/.test(text)) {
    throw new PublicKeyError(`${source}: this is a private key; give its public half (the .pub file beside it). Keep the private key secret`);
  }
  if (lines.length !== 1) {
    throw new PublicKeyError(`${source}: expected one OpenSSH public key (a line like 'ssh-ed25519 AAAA… you@host'), found ${lines.length === 0 ? 'none' : `${lines.length} lines`}`);
  }
  const key = parsePublicKeyLine(lines[0]!);
  if (key instanceof Error) {
    throw new PublicKeyError(`${source}: not an OpenSSH public key (${key.message}); make one with ssh-keygen -t ed25519 and give the .pub file`);
  }
  const print = fingerprint(key.blob);
  const file = home.authorizedKeys;
  const existing = readAuthorizedKeys(file);
  if (isAuthorized(existing, { algo: key.type, data: key.blob })) return { added: false, fingerprint: print, comment: key.comment };
  let before = '';
  try {
    before = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (before && !before.endsWith('\n')) before += '\n';
  const comment = key.comment.replace(/[\r\n]/g, ' ').trim();
  home.ensure(dirname(file));
  atomicWrite(file, `${before}${key.type} ${key.blob.toString('base64')}${comment ? ` ${comment}` : ''}\n`, 0o600);
  return { added: true, fingerprint: print, comment };
}
