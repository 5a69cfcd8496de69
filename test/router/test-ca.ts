import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  /** The CA's certificate (PEM), for clients to trust. */
  cert: string;
  /** A certificate and key (PEM) for the names, signed by the CA. */
  issue(names: string[], days?: number): { cert: string; key: string };
  remove(): void;
}

/** A throwaway certificate authority made with openssl, for HTTPS tests. */
export function makeTestCa(name = 'quarry test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-ca-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', `/CN=${name}`);
  let serial = 0;
  return {
    cert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    issue(names, days = 2) {
      const n = ++serial;
      writeFileSync(join(dir, `${n}.ext`), `subjectAltName=${names.map((d) => (/^[\d.]+$/.test(d) ? `IP:${d}` : `DNS:${d}`)).join(',')}\n`);
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.csr`,
        '-subj', `/CN=${names[0]}`);
      openssl('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.pem`,
        '-days', String(days), '-extfile', `${n}.ext`);
      return { cert: readFileSync(join(dir, `${n}.pem`), 'utf8'), key: readFileSync(join(dir, `${n}.key`), 'utf8') };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
