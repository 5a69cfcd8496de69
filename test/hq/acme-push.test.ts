import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { HomeLayout } from '../../home/index.js';
import { hqConfigOf } from '../../hq/config.js';
import { CertificateStore, etcdCertificateKv } from '../../hq/certs/index.js';
import { addAuthorizedKey, startDaemon, type HqConfig, type MakeControl } from '../../hq/index.js';
import { freePort } from '../support/ports.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { until } from '../support/until.js';
import { MemoryControl } from './api-memory-control.js';
import { commitAll, gitEnv, makeKey, run, tempDir } from './harness.js';

/**
 * The whole path of `tls: auto`, from a real `git push` to a certificate served: HQ's daemon
 * (its own etcd, router with HTTPS, git endpoint) with the `acme` setting pointing at pebble,
 * whose HTTP-01 checks reach the daemon's router. The stack control is the test's memory one
 * (what runs is not the point here: the release hook is).
 */
let pebble: Pebble;
let routerPort: number;

test.before(async () => {
  routerPort = await freePort();
  pebble = await startPebble(routerPort);
});
test.after.always(async () => { await pebble?.stop(); });

const control: MakeControl = async () => Object.assign(new MemoryControl(), {
  onRelease: async () => undefined,
  close: async () => undefined,
});

async function daemonWith(more: Partial<HqConfig>) {
  const dir = tempDir('quarry-acme-push-');
  const config: HqConfig = {
    ...hqConfigOf({ home: join(dir, 'home'), host: '127.0.0.1', sshPort: 0, apiHost: '127.0.0.1', apiPort: 0, routerPort: 0, etcd: undefined, etcdPort: 0, grid: undefined, locknet: false }),
    ...more,
  };
  const home = new HomeLayout(config.home);
  const key = await makeKey(dir, 'pusher');
  addAuthorizedKey(home, readFileSync(`${key}.pub`, 'utf8'), 'pusher.pub');
  const logged: string[] = [];
  const daemon = await startDaemon(config, control, { log: (l) => logged.push(l) });
  // A web node with `tls: auto` for one domain.
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  writeFileSync(join(repo, 'quarry.yml'), [
    'version: 1', 'nodes:', '  web:', '    type: web', '    image: quarry/runtime', '    command: [node, -e, "0"]',
    '    port: 8080', '    domains: [shop.test]', '    tls: auto', '',
  ].join('\n'));
  await commitAll(repo, 'a web node with tls: auto', true);
  const push = () => run('git', ['push', `ssh://quarry@127.0.0.1:${daemon.info.sshPort}/shop`, 'main'], { cwd: repo, env: gitEnv(key, daemon.info.sshPort) });
  return { daemon, home, logged, push };
}

function handshake(port: number, servername: string, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

test('a push with tls: auto gets the domain a certificate by ACME after the release, and HQ\'s router serves it', async (t) => {
  const { daemon, logged, push } = await daemonWith({
    routerPort, routerHttpsPort: 0,
    acme: { directory: pebble.directory, email: 'ops@shop.test', ca: pebble.caFile, renewDays: 30 },
  });
  t.teardown(() => daemon.close());
  const pushed = await push();
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stderr, /remote: .*HTTPS: getting certificates for shop\.test by ACME/);

  // The certificate reaches etcd, issued by pebble for the domain, and the router serves it by SNI.
  const etcd = new Etcd3({ hosts: daemon.etcd });
  t.teardown(() => etcd.close());
  const store = new CertificateStore(etcdCertificateKv(etcd));
  const info = await until('the certificate is in etcd', async () => (await store.get('shop.test')) ?? undefined, 60_000);
  t.is(info.source, 'acme');
  t.regex(info.issuer, /Pebble/);
  t.deepEqual(info.names, ['shop.test']);
  const served = await until('the router serves it', () => handshake(daemon.info.routerHttpsPort!, 'shop.test', pebble.root), 30_000);
  t.is(served.subject.CN, 'shop.test');
  t.false(logged.join('\n').includes('PRIVATE KEY'), 'no key in HQ\'s log');
});

test('a push with tls: auto to an HQ without the acme setting says that no certificate is got, and succeeds', async (t) => {
  const { daemon, push } = await daemonWith({});
  t.teardown(() => daemon.close());
  const pushed = await push();
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stderr, /remote: .*tls: auto for shop\.test, but HQ has no "acme" setting/);
});
