import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { domainOfHost, wildcardOf } from './host.js';

/** Where each domain's certificate lives in etcd: `/quarry/certs/<domain>` → a StoredCertificate as JSON. */
export const CERTS_PREFIX = '/quarry/certs/';
/** HTTP-01 answers: `/quarry/acme/challenges/<domain>/<token>` → the key authorisation. */
export const CHALLENGES_PREFIX = '/quarry/acme/challenges/';

/** A domain's certificate as etcd holds it. The key never leaves etcd, HQ and the routers. */
export interface StoredCertificate {
  /** PEM: the certificate, then its chain. */
  cert: string;
  /** PEM private key. */
  key: string;
  /** `manual`: `quarry certs add`; `acme`: obtained by HQ for a node with `tls: auto`. */
  source: 'manual' | 'acme';
}

/** What may be shown of a certificate: never the key. */
export interface CertificateInfo {
  domain: string;
  /** The issuer's common name (or its whole name when it has none). */
  issuer: string;
  /** ISO times. */
  notBefore: string;
  notAfter: string;
  /** The names it is good for (subjectAltName DNS entries). */
  names: string[];
  source: 'manual' | 'acme';
}

/** A certificate that cannot serve the domain it is given for; the message names why, never the key. */
export class CertificateError extends Error {
  override name = 'CertificateError';
}

/**
 * Checks a certificate and key for a domain (PEM both; the key matches the certificate; the
 * certificate names the domain and is still valid) and describes it. Throws CertificateError.
 */
export function describeCertificate(domain: string, stored: StoredCertificate, now = new Date()): CertificateInfo {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(stored.cert);
  } catch {
    throw new CertificateError(`the certificate for ${domain} is not a PEM X.509 certificate`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(stored.key));
  } catch {
    throw new CertificateError(`the key for ${domain} is not a PEM private key`);
  }
  if (!matches) throw new CertificateError(`the key for ${domain} does not belong to its certificate`);
  const names = (x509.subjectAltName ?? '').split(',').map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
  if (!names.includes(domain) && !(wildcardOf(domain) !== undefined && names.includes(wildcardOf(domain)!))) {
    throw new CertificateError(`the certificate is for ${names.join(', ') || 'no DNS name'}, not ${domain}`);
  }
  const notAfter = new Date(x509.validTo);
  if (notAfter <= now) throw new CertificateError(`the certificate for ${domain} expired on ${notAfter.toISOString()}`);
  const cn = /^CN=(.*)$/m.exec(x509.issuer)?.[1];
  return {
    domain, issuer: cn ?? x509.issuer.replace(/\n/g, ', '), notBefore: new Date(x509.validFrom).toISOString(),
    notAfter: notAfter.toISOString(), names, source: stored.source,
  };
}

/** The domain of a key `<prefix><domain>`, lower-cased; undefined for other keys. */
function domainOfKey(key: string): string | undefined {
  const rest = key.slice(CERTS_PREFIX.length);
  return key.startsWith(CERTS_PREFIX) && rest !== '' && !rest.includes('/') ? rest.toLowerCase() : undefined;
}

/**
 * The router's certificates: a TLS context per domain, from what etcd holds under
 * `/quarry/certs/`, rebuilt when that changes (contexts of unchanged values are kept).
 */
export class CertificateTable {
  private contexts = new Map<string, { value: string; context: SecureContext }>();

  constructor(private readonly log: (line: string) => void) {}

  /** Replaces the table from the prefix's keys and values; a bad value is logged (by domain) and left out. */
  apply(kvs: ReadonlyMap<string, string>): void {
    const next = new Map<string, { value: string; context: SecureContext }>();
    for (const [key, value] of kvs) {
      const domain = domainOfKey(key);
      if (!domain) continue;
      const kept = this.contexts.get(domain);
      if (kept?.value === value) {
        next.set(domain, kept);
        continue;
      }
      try {
        const stored = JSON.parse(value) as StoredCertificate;
        next.set(domain, { value, context: createSecureContext({ cert: stored.cert, key: stored.key }) });
      } catch (err) {
        // Never the value: it holds the key.
        this.log(`certs: ignoring the certificate of ${domain}: ${err instanceof SyntaxError ? 'not JSON' : (err as Error).message}`);
      }
    }
    this.contexts = next;
  }

  /** The context for a server name or Host: the domain's own, else a `*.` one a label up. */
  contextFor(host: string | undefined): SecureContext | undefined {
    const domain = domainOfHost(host);
    if (domain === undefined) return undefined;
    const exact = this.contexts.get(domain);
    if (exact) return exact.context;
    const wildcard = wildcardOf(domain);
    return wildcard === undefined ? undefined : this.contexts.get(wildcard)?.context;
  }

  domains(): string[] {
    return [...this.contexts.keys()].sort();
  }
}

/** HTTP-01 answers by domain and token, from `/quarry/acme/challenges/<domain>/<token>`. */
export class ChallengeTable {
  private answers = new Map<string, string>();

  apply(kvs: ReadonlyMap<string, string>): void {
    const next = new Map<string, string>();
    for (const [key, value] of kvs) {
      const rest = key.slice(CHALLENGES_PREFIX.length);
      const slash = rest.indexOf('/');
      // Tokens are base64url: their case is kept; the domain's is folded.
      if (key.startsWith(CHALLENGES_PREFIX) && slash > 0) next.set(`${rest.slice(0, slash).toLowerCase()}/${rest.slice(slash + 1)}`, value);
    }
    this.answers = next;
  }

  /** The key authorisation for a token of a domain, if HQ is proving that domain now. */
  answer(domain: string, token: string): string | undefined {
    return this.answers.get(`${domain}/${token}`);
  }
}
