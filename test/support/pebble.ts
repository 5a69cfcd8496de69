import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa } from '../router/test-ca.js';
import { freePort } from './ports.js';
import { until } from './until.js';

/**
 * Debian's pebble (the ACME test server) with pebble-challtestsrv as its DNS server, every
 * name resolving to 127.0.0.1. Its HTTP-01 checks go to `httpPort` on loopback: a router's
 * plain HTTP port. No PEBBLE_VA_ALWAYS_VALID: the challenge is really checked.
 */
export interface Pebble {
  /** The ACME directory URL. */
  directory: string;
  /** The file with the CA that signed pebble's own HTTPS (HQ's `acme.ca`). */
  caFile: string;
  /** That CA, PEM. */
  caPem: string;
  /** The root pebble signs certificates with, PEM: what a client verifies a served one by. */
  root: string;
  stop(): Promise<void>;
}

export function fetchText(url: string, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: caPem, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function startPebble(httpPort: number): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-pebble-'));
  const children: ChildProcess[] = [];
  const spawnLogged = (command: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    let output = '';
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    child.stdout!.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-4000); });
    child.stderr!.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-4000); });
    children.push(child);
    return { child, output: () => output };
  };
  const ca = makeTestCa('pebble test CA');
  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    ca.remove();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [dnsPort, challMgmt, acmePort, pebbleMgmt, tlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    spawnLogged('pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${challMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
      '-http01', '', '-https01', '', '-tlsalpn01', '',
    ]);
    const tls = ca.issue(['localhost', '127.0.0.1']);
    writeFileSync(join(dir, 'pebble.pem'), tls.cert);
    writeFileSync(join(dir, 'pebble.key'), tls.key);
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.cert);
    writeFileSync(join(dir, 'pebble.json'), JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`, managementListenAddress: `127.0.0.1:${pebbleMgmt}`,
        certificate: join(dir, 'pebble.pem'), privateKey: join(dir, 'pebble.key'),
        httpPort, tlsPort, ocspResponderURL: '', externalAccountBindingRequired: false,
      },
    }));
    const pebble = spawnLogged('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
      { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' });
    const directory = `https://127.0.0.1:${acmePort}/dir`;
    try {
      await until('pebble answers', () => fetchText(directory, ca.cert).then(() => true, () => undefined), 20_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${pebble.output()}`);
    }
    const root = await fetchText(`https://127.0.0.1:${pebbleMgmt}/roots/0`, ca.cert);
    return { directory, caFile, caPem: ca.cert, root, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
