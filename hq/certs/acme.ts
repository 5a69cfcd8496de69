import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { dirname } from 'node:path';
import { rootCertificates } from 'node:tls';
import * as acme from 'acme-client';
import type { Etcd3 } from 'etcd3';
import { CHALLENGES_PREFIX } from '../../router/index.js';
import type { CertificateStore } from './store.js';

export interface AcmeSettings {
  /** The ACME directory URL (Let's Encrypt's by default). */
  directory: string;
  /** The account's contact. */
  email: string;
  /** A PEM file of a CA to trust for the directory (a private or test ACME server). */
  ca?: string;
  /** Renew when fewer days than this are left. */
  renewDays: number;
}

export interface AcmeOptions {
  settings: AcmeSettings;
  /** Where the account key is kept (0600, its folder 0700); made on first use. */
  accountKeyFile: string;
  etcd: Etcd3;
  store: CertificateStore;
  log: (line: string) => void;
  /** How long a challenge answer is given to reach every router before the CA is told to look; default 500 ms. */
  propagationMs?: number;
}

const DAY = 86_400_000;

/**
 * Certificates by ACME (HTTP-01) for the domains of web nodes with `tls: auto`: the answer
 * to each challenge goes to etcd (`/quarry/acme/challenges/<domain>/<token>`), where every
 * router answers it on plain HTTP; the certificate goes to the store like `quarry certs add`'s,
 * with source `acme`. One certificate per domain. `renewDue` (on a timer from `start`)
 * renews the `acme` ones with fewer than `renewDays` left, and gets those still wanted.
 */
export class AcmeCertificates {
  private client: acme.Client | undefined;
  private readonly wanted = new Set<string>();
  private readonly busy = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AcmeOptions) {}

  /** Gets a certificate for each domain that has none (or an `acme` one due), one after another. */
  async ensure(domains: readonly string[], now = new Date()): Promise<void> {
    let failed: unknown;
    for (const domain of domains) {
      this.wanted.add(domain);
      const info = await this.options.store.get(domain);
      if (info && (info.source === 'manual' || !this.due(info.notAfter, now))) continue;
      try {
        await this.obtain(domain);
      } catch (err) {
        failed ??= err;
      }
    }
    // Each domain was tried (and its failure logged); the timer tries the missing ones again.
    if (failed !== undefined) throw failed;
  }

  /** Renews every `acme` certificate that is due, and gets the wanted ones still missing; failures are logged. */
  async renewDue(now = new Date()): Promise<void> {
    const kept = await this.options.store.list();
    const due = kept.filter((c) => c.source === 'acme' && this.due(c.notAfter, now)).map((c) => c.domain);
    const missing = [...this.wanted].filter((d) => !kept.some((c) => c.domain === d));
    for (const domain of new Set([...due, ...missing])) {
      try {
        await this.obtain(domain);
      } catch {
        // obtain logged it; the next round tries again.
      }
    }
  }

  /** Checks for renewals every `everyMs` (default 12 h). */
  start(everyMs = 12 * 3_600_000): void {
    this.timer = setInterval(() => void this.renewDue(), everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.busy.values()].map((p) => p.catch(() => undefined)));
  }

  private due(notAfter: string, now: Date): boolean {
    return Date.parse(notAfter) - now.getTime() < this.options.settings.renewDays * DAY;
  }

  /** One order for one domain; a second call for a domain in progress waits for the first. */
  private obtain(domain: string): Promise<void> {
    let running = this.busy.get(domain);
    if (!running) {
      running = this.order(domain).finally(() => this.busy.delete(domain));
      this.busy.set(domain, running);
    }
    return running;
  }

  private async order(domain: string): Promise<void> {
    const { etcd, store, log, settings } = this.options;
    const started = Date.now();
    log(`acme: getting a certificate for ${domain} from ${settings.directory}`);
    try {
      const client = await this.clientOf();
      const [key, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] });
      const answered: string[] = [];
      const cert = await client.auto({
        csr, email: settings.email, termsOfServiceAgreed: true, challengePriority: ['http-01'],
        // The CA checks the answer itself; HQ may not reach its own domains by name.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          const at = `${CHALLENGES_PREFIX}${domain}/${challenge.token}`;
          await etcd.put(at).value(keyAuthorization);
          answered.push(at);
          await new Promise((r) => setTimeout(r, this.options.propagationMs ?? 500));
        },
        challengeRemoveFn: async (_authz, challenge) => {
          await etcd.delete().key(`${CHALLENGES_PREFIX}${domain}/${challenge.token}`);
        },
      }).finally(async () => {
        for (const at of answered) await etcd.delete().key(at).catch(() => undefined);
      });
      const info = await store.add(domain, cert, key.toString(), 'acme');
      log(`acme: certificate for ${domain} kept (issuer ${info.issuer}, expires ${info.notAfter}) in ${Date.now() - started} ms`);
    } catch (err) {
      log(`acme: no certificate for ${domain}: ${(err as Error).message}`);
      throw err;
    }
  }

  private async clientOf(): Promise<acme.Client> {
    if (this.client) return this.client;
    const { settings, accountKeyFile } = this.options;
    if (settings.ca) {
      // acme-client's own HTTP client: the directory's CA is trusted for it alone.
      acme.axios.defaults.httpsAgent = new Agent({ ca: [...rootCertificates, readFileSync(settings.ca, 'utf8')] });
    }
    let accountKey: string;
    if (existsSync(accountKeyFile)) accountKey = readFileSync(accountKeyFile, 'utf8');
    else {
      mkdirSync(dirname(accountKeyFile), { recursive: true, mode: 0o700 });
      accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
      writeFileSync(accountKeyFile, accountKey, { mode: 0o600 });
    }
    chmodSync(accountKeyFile, 0o600);
    this.client = new acme.Client({ directoryUrl: settings.directory, accountKey });
    return this.client;
  }
}
