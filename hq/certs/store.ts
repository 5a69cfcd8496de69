import type { Etcd3 } from 'etcd3';
import {
  CERTS_PREFIX, CertificateError, describeCertificate, type CertificateInfo, type StoredCertificate,
} from '../../router/index.js';
import { QuarryError } from '../../errors/index.js';

/** A domain name HQ will keep a certificate for: a DNS name, or `*.` and one. */
const DOMAIN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A certificate HQ cannot keep (bad PEM, a key that does not match, another domain's, expired). */
export class CertificateRefusedError extends QuarryError {}
/** `quarry certs remove` of a domain without a certificate. */
export class CertificateNotFoundError extends QuarryError {}

/** Where certificates are kept: etcd in HQ, memory in tests. Keys are full etcd keys. */
export interface CertificateKv {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<boolean>;
  all(prefix: string): Promise<Record<string, string>>;
}

export function etcdCertificateKv(etcd: Etcd3): CertificateKv {
  return {
    get: (key) => etcd.get(key).string(),
    put: async (key, value) => { await etcd.put(key).value(value); },
    delete: async (key) => Number((await etcd.delete().key(key)).deleted) > 0,
    all: (prefix) => etcd.getAll().prefix(prefix).strings(),
  };
}

export class MemoryCertificateKv implements CertificateKv {
  readonly values = new Map<string, string>();
  async get(key: string) { return this.values.get(key) ?? null; }
  async put(key: string, value: string) { this.values.set(key, value); }
  async delete(key: string) { return this.values.delete(key); }
  async all(prefix: string) { return Object.fromEntries([...this.values].filter(([k]) => k.startsWith(prefix))); }
}

/** A domain as given by a user, checked and lower-cased; throws CertificateRefusedError. */
export function certificateDomain(domain: string): string {
  const name = domain.trim().toLowerCase().replace(/\.$/, '');
  if (name.length > 253 || !DOMAIN.test(name)) {
    throw new CertificateRefusedError(`${JSON.stringify(domain)} is not a domain name (like example.com or *.example.com)`);
  }
  return name;
}

/**
 * The domains' certificates, where every router reads them (`/quarry/certs/<domain>` in
 * etcd, as JSON with the PEM key). What leaves the store (list, add, remove) is a
 * CertificateInfo: domain, issuer, dates, names and source, never the key.
 */
export class CertificateStore {
  constructor(private readonly kv: CertificateKv) {}

  async list(): Promise<CertificateInfo[]> {
    const infos: CertificateInfo[] = [];
    for (const [key, value] of Object.entries(await this.kv.all(CERTS_PREFIX))) {
      const info = this.infoOf(key.slice(CERTS_PREFIX.length), value);
      if (info) infos.push(info);
    }
    return infos.sort((a, b) => a.domain.localeCompare(b.domain));
  }

  async get(domain: string): Promise<CertificateInfo | undefined> {
    const name = certificateDomain(domain);
    const value = await this.kv.get(CERTS_PREFIX + name);
    return value === null ? undefined : this.infoOf(name, value);
  }

  /** Checks and keeps a certificate and key for a domain (replacing any); returns what was kept. */
  async add(domain: string, cert: string, key: string, source: StoredCertificate['source']): Promise<CertificateInfo> {
    const name = certificateDomain(domain);
    const stored: StoredCertificate = { cert, key, source };
    let info: CertificateInfo;
    try {
      info = describeCertificate(name, stored);
    } catch (err) {
      if (err instanceof CertificateError) throw new CertificateRefusedError(err.message);
      throw err;
    }
    await this.kv.put(CERTS_PREFIX + name, JSON.stringify(stored));
    return info;
  }

  async remove(domain: string): Promise<CertificateInfo> {
    const name = certificateDomain(domain);
    const value = await this.kv.get(CERTS_PREFIX + name);
    if (value === null || !(await this.kv.delete(CERTS_PREFIX + name))) {
      throw new CertificateNotFoundError(`HQ keeps no certificate for ${name} (see quarry certs list)`);
    }
    return this.infoOf(name, value) ?? { domain: name, issuer: '?', notBefore: '', notAfter: '', names: [], source: 'manual' };
  }

  private infoOf(domain: string, value: string): CertificateInfo | undefined {
    try {
      const stored = JSON.parse(value) as StoredCertificate;
      // Listed as it is, even expired: `list` is where one sees that.
      return describeCertificate(domain, stored, new Date(0));
    } catch {
      return undefined;
    }
  }
}
