import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import test from 'ava';
import { AcmeCertificates, CertificateStore, etcdCertificateKv } from '../../hq/certs/index.js';
import { startRouter, type Router } from '../../router/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { freePort } from '../support/ports.js';
import { get, startBackend, until, type Backend } from '../router/backends.js';
import { makeTestCa, type TestCa } from '../router/test-ca.js';

/**
 * ACME against Debian's pebble, with the real HTTP-01 challenge: pebble's validation
 * requests go to the router's HTTP port (pebble's `httpPort`), the test domain resolving to
 * 127.0.0.1 through pebble-challtestsrv as pebble's DNS server. No PEBBLE_VA_ALWAYS_VALID.
 */
let etcd: TestEtcd;
let ca: TestCa;
let router: Router;
let backend: Backend;
let dir: string;
const children: ChildProcess[] = [];
let directory: string;
let pebbleRoot: string;
const logged: string[] = [];

function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout!.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-4000); });
  child.stderr!.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-4000); });
  children.push(child);
  return { child, output: () => output };
}

function fetchText(url: string, caPem: string): Promise<string> {
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

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quarry-acme-'));
  etcd = await startEtcd();
  ca = makeTestCa('pebble test CA');
  backend = await startBackend('shop');
  await etcd.client.put('/quarry/routes/shop.test/w1').value(backend.url);
  router = await startRouter({ etcd: [etcd.endpoint], httpsPort: 0 });

  const [dnsPort, challMgmt, acmePort, pebbleMgmt, tlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  spawnLogged('pebble-challtestsrv', [
    '-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${challMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    '-http01', '', '-https01', '', '-tlsalpn01', '',
  ]);
  const tls = ca.issue(['localhost', '127.0.0.1']);
  writeFileSync(join(dir, 'pebble.pem'), tls.cert);
  writeFileSync(join(dir, 'pebble.key'), tls.key);
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  writeFileSync(join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`, managementListenAddress: `127.0.0.1:${pebbleMgmt}`,
      certificate: join(dir, 'pebble.pem'), privateKey: join(dir, 'pebble.key'),
      // Its HTTP-01 checks go to this port of the domain's address: the router's plain HTTP.
      httpPort: router.port, tlsPort, ocspResponderURL: '', externalAccountBindingRequired: false,
    },
  }));
  const pebble = spawnLogged('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
    { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' });
  directory = `https://127.0.0.1:${acmePort}/dir`;
  try {
    await until('pebble answers', () => fetchText(directory, ca.cert).then(() => true, () => false), 20_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${pebble.output()}`);
  }
  pebbleRoot = await fetchText(`https://127.0.0.1:${pebbleMgmt}/roots/0`, ca.cert);
});

test.after.always(async () => {
  for (const child of children) child.kill('SIGTERM');
  await router?.close(100);
  await backend?.close();
  await etcd?.stop();
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

function handshake(servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: router.httpsPort!, servername, ca: pebbleRoot }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

test('a tls: auto domain gets a certificate by ACME HTTP-01 through the router, served by SNI, and is renewed when due', async (t) => {
  const store = new CertificateStore(etcdCertificateKv(etcd.client));
  const accountKeyFile = join(dir, 'acme', 'account.key');
  const acme = new AcmeCertificates({
    settings: { directory, email: 'ops@shop.test', ca: join(dir, 'ca.pem'), renewDays: 30 },
    accountKeyFile, etcd: etcd.client, store, log: (l) => logged.push(l), propagationMs: 200,
  });
  await acme.ensure(['shop.test']);
  const info = await store.get('shop.test');
  t.is(info?.source, 'acme');
  t.regex(info!.issuer, /Pebble/);
  t.deepEqual(info!.names, ['shop.test']);
  t.is(statSync(accountKeyFile).mode & 0o777, 0o600);
  t.deepEqual(await etcd.client.getAll().prefix('/quarry/acme/challenges/').keys(), [], 'the challenge answers are cleaned up');

  // The router serves it (verified against pebble's root), and plain HTTP now redirects.
  await until('served', async () => (await handshake('shop.test').catch(() => undefined))?.subject.CN === 'shop.test');
  const first = await handshake('shop.test');
  t.is((await get(router.port, 'shop.test', '/a?b=1')).headers.location, `https://shop.test:${router.httpsPort}/a?b=1`);

  // Not due: nothing happens. Due (as if 10 years on): a new certificate replaces it.
  await acme.renewDue();
  t.is((await handshake('shop.test')).serialNumber, first.serialNumber);
  await acme.renewDue(new Date(Date.now() + 3650 * 86_400_000));
  await until('renewed', async () => (await handshake('shop.test').catch(() => undefined))?.serialNumber !== first.serialNumber);
  t.false(logged.join('\n').includes('PRIVATE KEY'), 'no key in the log');
  t.true(logged.some((l) => /acme: certificate for shop\.test kept/.test(l)), logged.join('\n'));
  await acme.stop();
});
