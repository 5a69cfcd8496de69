import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import test from 'ava';
import { AcmeCertificates, CertificateStore, etcdCertificateKv } from '../../hq/certs/index.js';
import { startRouter, type Router } from '../../router/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { get, startBackend, until, type Backend } from '../router/backends.js';

/**
 * ACME against Debian's pebble, with the real HTTP-01 challenge: pebble's validation
 * requests go to the router's HTTP port (pebble's `httpPort`), the test domain resolving to
 * 127.0.0.1 through pebble-challtestsrv as pebble's DNS server. No PEBBLE_VA_ALWAYS_VALID.
 */
let etcd: TestEtcd;
let router: Router;
let backend: Backend;
let dir: string;
let pebble: Pebble;
let directory: string;
let pebbleRoot: string;
const logged: string[] = [];

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quarry-acme-'));
  etcd = await startEtcd();
  backend = await startBackend('shop');
  await etcd.client.put('/quarry/routes/shop.test/w1').value(backend.url);
  router = await startRouter({ etcd: [etcd.endpoint], httpsPort: 0 });
  // Its HTTP-01 checks go to the router's plain HTTP.
  pebble = await startPebble(router.port);
  directory = pebble.directory;
  pebbleRoot = pebble.root;
});

test.after.always(async () => {
  await pebble?.stop();
  await router?.close(100);
  await backend?.close();
  await etcd?.stop();
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
    settings: { directory, email: 'ops@shop.test', ca: pebble.caFile, renewDays: 30 },
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
