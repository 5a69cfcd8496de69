// HQ's own registry (Debian's docker-registry, distribution 2.8): TLS from the grid's CA,
// credentials only HQ holds, a loopback forward that this machine's real docker engine pushes
// through, garbage collection, and the one a killed HQ left behind ended at the next start.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { HomeLayout } from '../../home/index.js';
import { GridCa } from '../../hq/keys/index.js';
import { startOwnRegistry, type OwnRegistry } from '../../hq/registry/index.js';
import { registryShipper } from '../../launcher/index.js';
import { docker } from '../support/docker.js';

/** The registry listens on another loopback address than its forward: as on a grid, where it is the servers' gateway. */
const HOST = '127.0.0.2';

function homeFor(t: ExecutionContext): HomeLayout {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-registry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new HomeLayout(join(dir, 'home'));
}

async function started(t: ExecutionContext, home: HomeLayout): Promise<OwnRegistry> {
  const registry = await startOwnRegistry({ home, ca: await GridCa.open(home), host: HOST, port: 0 });
  t.teardown(() => registry.stop());
  return registry;
}

/** A GET over TLS checked against `ca`, with the given Authorization (or none). */
function get(address: string, path: string, ca: string, authorization?: string): Promise<number> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, ca, headers: authorization ? { authorization } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('it serves TLS from the grid CA and takes only its own credentials; the password is 0600 and in no log or argument', async (t) => {
  const home = homeFor(t);
  const registry = await started(t, home);
  t.is(registry.address.split(':')[0], HOST);
  t.is(await get(registry.address, '/v2/', registry.caCert), 401, 'no credentials');
  const wrong = `Basic ${Buffer.from('quarry:not-the-password').toString('base64')}`;
  t.is(await get(registry.address, '/v2/', registry.caCert, wrong), 401, 'a wrong password');
  const right = `Basic ${Buffer.from(`${registry.auth.username}:${registry.auth.password}`).toString('base64')}`;
  t.is(await get(registry.address, '/v2/', registry.caCert, right), 200);
  // Another CA's client does not trust it.
  const other = await GridCa.open(new HomeLayout(join(mkdtempSync(join(tmpdir(), 'quarry-other-ca-')), 'home')));
  await t.throwsAsync(get(registry.address, '/v2/', other.cert, right), { message: /self.signed|unable to verify|certificate/i });

  const passwordFile = join(home.root, 'registry', 'password');
  t.is(statSync(passwordFile).mode & 0o777, 0o600);
  t.is(statSync(join(home.root, 'registry', 'config.yml')).mode & 0o777, 0o600);
  t.false(readFileSync(registry.logPath, 'utf8').includes(registry.auth.password), 'not in its log');
  t.false(readFileSync(`/proc/${registry.pid}/cmdline`, 'utf8').includes(registry.auth.password), 'not in its arguments');
});

test('the real engine pushes through the loopback forward; a manifest deleted is collected, and the registry answers again after', async (t) => {
  const home = homeFor(t);
  const registry = await started(t, home);
  const tag = `quarry/regtest${randomBytes(4).toString('hex')}-web:one`;
  await docker.getImage('quarry/node:20').tag({ repo: tag.split(':')[0]!, tag: 'one' });
  t.teardown(() => docker.getImage(tag).remove({ noprune: true }).catch(() => undefined));

  // The shipper's push, to an "engine" that already has the image: nothing is pulled, so push by hand through it.
  const shipper = registryShipper(docker, registry);
  t.is(await shipper.ship(docker, tag, {}), 'present', 'the same engine has it');
  const named = `${registry.local}/${tag.split(':')[0]}`;
  await docker.getImage(tag).tag({ repo: named, tag: 'one' });
  t.teardown(() => docker.getImage(`${named}:one`).remove({ noprune: true }).catch(() => undefined));
  const pushed = await docker.getImage(`${named}:one`).push({}, undefined, registry.localAuth) as unknown as NodeJS.ReadableStream;
  let said = '';
  for await (const chunk of pushed) said += chunk.toString();
  t.notRegex(said, /"error"/, said);
  const repo = tag.split(':')[0]!;
  const accept = { accept: 'application/vnd.docker.distribution.manifest.v2+json' };
  const head = await registry.api('HEAD', `/v2/${repo}/manifests/one`, accept);
  t.is(head.status, 200);
  const digest = String(head.headers['docker-content-digest']);
  t.regex(digest, /^sha256:/);
  const blobs = () => {
    const dir = join(home.root, 'registry', 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256');
    try {
      return blobNames(dir);
    } catch {
      return [];
    }
  };
  t.true(blobs().length >= 2, 'its config and layers are stored');

  t.is((await registry.api('DELETE', `/v2/${repo}/manifests/${digest}`)).status, 202);
  const said2 = await registry.garbageCollect();
  t.regex(said2, /blob/);
  t.is(blobs().length, 0, 'every blob of the deleted manifest is gone');
  t.is((await registry.api('GET', '/v2/')).status, 200, 'it answers again after the collection');
});

test('a registry started again on the same home keeps its port and password; stop() ends its process', async (t) => {
  const home = homeFor(t);
  const first = await startOwnRegistry({ home, ca: await GridCa.open(home), host: HOST, port: 0 });
  const { pid, address, auth } = first;
  await first.stop();
  t.false(isAlive(pid), 'stopped');
  const second = await started(t, home);
  t.is(second.address, address);
  t.is(second.auth.password, auth.password);
  t.is((await second.api('GET', '/v2/')).status, 200);
});

function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The blobs in the registry's store (under two-letter folders). */
function blobNames(dir: string): string[] {
  return readdirSync(dir).flatMap((prefix) => readdirSync(join(dir, prefix)));
}
