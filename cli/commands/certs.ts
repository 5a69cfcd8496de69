import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { QuarryError, UsageError } from '../../errors/index.js';
import type { CertificateInfo } from '../../hq/index.js';
import { clientFor, parseHqArgs, table } from '../client.js';
import type { Command } from '../command.js';

/**
 * `quarry certs`: the domains' TLS certificates, kept by HQ where every router reads them.
 * `add` reads the two PEM files here and sends them to HQ in a request's body: the key is
 * never a command-line argument (only its file's name), a URL, or printed.
 */
export const certs: Command = {
  summary: 'TLS certificates for the routers: list [--json], add DOMAIN --cert FILE --key FILE, remove DOMAIN',
  usage: 'quarry certs [list] [--json] | quarry certs add DOMAIN --cert FILE --key FILE | quarry certs remove DOMAIN  [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' }, cert: { type: 'string' }, key: { type: 'string' } });
    const [verb = 'list', ...rest] = positionals;
    const client = clientFor(values, io);
    const json = values.json === true;

    if (verb === 'list') {
      if (rest.length > 0) throw new UsageError('certs list takes no arguments');
      const rows = await client.certs();
      if (json) io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) io.stderr.write('no certificates: add one with quarry certs add DOMAIN --cert FILE --key FILE, or set tls: auto on a web node\n');
      else io.stdout.write(table(['DOMAIN', 'ISSUER', 'EXPIRES', 'SOURCE'], rows.map((c) => [c.domain, c.issuer, expiry(c), c.source])));
      return 0;
    }

    if (verb === 'add') {
      const [domain, ...more] = rest;
      if (!domain || more.length > 0) throw new UsageError('name one domain: quarry certs add DOMAIN --cert FILE --key FILE');
      if (typeof values.cert !== 'string' || typeof values.key !== 'string') throw new UsageError('give both --cert FILE and --key FILE (PEM)');
      const cert = readPem(io.cwd, values.cert, 'certificate');
      const key = readPem(io.cwd, values.key, 'key');
      const info = await client.addCert(domain, cert, key);
      io.stdout.write(json ? `${JSON.stringify(info, null, 2)}\n`
        : `certificate for ${info.domain} kept (issuer ${info.issuer}, expires ${expiry(info)}): the routers serve it over HTTPS\n`);
      return 0;
    }

    if (verb === 'remove') {
      const [domain, ...more] = rest;
      if (!domain || more.length > 0) throw new UsageError('name one domain: quarry certs remove DOMAIN');
      const info = await client.removeCert(domain);
      io.stdout.write(json ? `${JSON.stringify(info, null, 2)}\n` : `certificate for ${info.domain} removed\n`);
      return 0;
    }
    throw new UsageError(`unknown certs command '${verb}': list, add or remove`);
  },
};

function readPem(cwd: string, file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (err) {
    throw new QuarryError(`${file}: cannot read the ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!text.includes('-----BEGIN ')) throw new QuarryError(`${file}: not a PEM ${what} (no -----BEGIN line)`);
  return text;
}

function expiry(c: CertificateInfo): string {
  const days = Math.floor((Date.parse(c.notAfter) - Date.now()) / 86_400_000);
  return `${c.notAfter.slice(0, 10)} (${days < 0 ? 'expired' : `${days} d`})`;
}
