import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { QuarryError } from '../../errors/index.js';
import { atomicWrite, type HomeLayout } from '../../home/index.js';

const run = promisify(execFile);

/** A certificate could not be made (openssl missing or failing). */
export class CertificateError extends QuarryError {}

/** A certificate and its private key, in PEM. */
export interface IssuedCert {
  cert: string;
  key: string;
}

export interface IssueOptions {
  /** The subject's common name: a server's id for its agent, `etcd` for etcd. */
  cn: string;
  /** Addresses and names it serves at (a server certificate); none: a client certificate only. */
  sans?: string[];
  /** Days it is valid; default ten years (the grid's CA signs them, HQ replaces them by hand). */
  days?: number;
}

/**
 * The grid's own certificate authority, made by HQ once under `<home>/ca/`: `ca.key` (0600)
 * and `ca.crt`. It signs the certificate of HQ's etcd (on the servers' network) and one client
 * certificate per agent, so that only the grid's own servers reach etcd there. Keys are ECDSA
 * P-256, made by openssl in a folder private to HQ; no key ever passes through a command line.
 */
export class GridCa {
  readonly dir: string;

  private constructor(private readonly home: HomeLayout) {
    this.dir = join(home.root, 'ca');
  }

  /** The CA of this home, made the first time. */
  static async open(home: HomeLayout): Promise<GridCa> {
    const ca = new GridCa(home);
    if (!existsSync(ca.certFile) || !existsSync(ca.keyFile)) await ca.make();
    return ca;
  }

  get certFile(): string { return join(this.dir, 'ca.crt'); }
  get keyFile(): string { return join(this.dir, 'ca.key'); }
  /** The CA's certificate, in PEM: what every party trusts. */
  get cert(): string { return readFileSync(this.certFile, 'utf8'); }

  private async make(): Promise<void> {
    this.home.ensure(this.dir);
    await this.openssl(async (tmp) => {
      const key = join(tmp, 'ca.key');
      const crt = join(tmp, 'ca.crt');
      await ecKey(key);
      await openssl(['req', '-x509', '-new', '-key', key, '-out', crt, '-days', '3650', '-sha256',
        '-subj', '/CN=quarry grid CA',
        '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
      atomicWrite(this.keyFile, readFileSync(key), 0o600);
      atomicWrite(this.certFile, readFileSync(crt), 0o644);
    });
  }

  /** A certificate signed by the CA: a server one when `sans` are given, else a client one. */
  async issue(options: IssueOptions): Promise<IssuedCert> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(options.cn)) {
      throw new CertificateError(`cannot make a certificate for ${JSON.stringify(options.cn)}: not a name of letters, digits, ".", "_" and "-"`);
    }
    return this.openssl(async (tmp) => {
      const key = join(tmp, 'leaf.key');
      const csr = join(tmp, 'leaf.csr');
      const crt = join(tmp, 'leaf.crt');
      const ext = join(tmp, 'leaf.ext');
      await ecKey(key);
      await openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${options.cn}`]);
      const sans = (options.sans ?? []).map((s) => (isIP(s) ? `IP:${s}` : `DNS:${s}`));
      writeFileSync(ext, [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage=${sans.length > 0 ? 'serverAuth,clientAuth' : 'clientAuth'}`,
        ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
      ].join('\n') + '\n', { mode: 0o600 });
      await openssl(['x509', '-req', '-in', csr, '-CA', this.certFile, '-CAkey', this.keyFile, '-set_serial', `0x${serial()}`,
        '-out', crt, '-days', String(options.days ?? 3650), '-sha256', '-extfile', ext]);
      return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
    });
  }

  /**
   * The certificate files a service of HQ shows on the servers' network (`<name>.crt`, `.key`,
   * with the CA's own `ca.crt`), signed for `hosts` and 127.0.0.1 under `<home>/ca/`, made again
   * only when those addresses change.
   */
  async serverFiles(name: string, hosts: string[]): Promise<{ cert: string; key: string; ca: string }> {
    const files = { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`), ca: this.certFile };
    const sansFile = join(this.dir, `${name}.sans`);
    const sans = [...new Set([...hosts, '127.0.0.1'])].sort().join(',');
    const made = existsSync(files.cert) && existsSync(files.key) && existsSync(sansFile) && readFileSync(sansFile, 'utf8') === sans;
    if (!made) {
      const issued = await this.issue({ cn: `quarry-${name}`, sans: sans.split(',') });
      this.home.ensure(this.dir);
      atomicWrite(files.key, issued.key, 0o600);
      atomicWrite(files.cert, issued.cert, 0o644);
      atomicWrite(sansFile, sans, 0o644);
    }
    return files;
  }

  /** Runs work in a temporary folder under the CA's own (0700), removed afterwards. */
  private async openssl<T>(work: (tmp: string) => Promise<T>): Promise<T> {
    this.home.ensure(this.dir);
    const tmp = mkdtempSync(join(this.dir, '.tmp-'));
    try {
      return await work(tmp);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}

function serial(): string {
  // 16 random bytes, the first below 0x80 so that the serial is positive.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

async function ecKey(path: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new CertificateError('cannot make the grid\'s certificates: openssl is not installed (apt-get install openssl)');
    throw new CertificateError(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-2).join(' ')}`, { cause: err });
  }
}
