import test from 'ava';
import { parse } from 'yaml';
import { connectEngine, RemoteEngineError } from '../../launcher/index.js';
import {
  createProvider, hostKeyFingerprint, hostKeyOf, HostKeyMismatchError,
  type DigitalOceanServer, type Progress, type Server,
} from '../../pacific/index.js';
import { DigitalOceanSimulator } from './do-simulator.js';
import { onServer, quarryKey, removeFleet, uniqueFleet } from './fleet.js';

// Pinned host keys of DigitalOcean droplets, against the simulator (whose droplets are real
// docker-provider servers with their own sshd, given their host key from the user data the way
// cloud-init's SSH module would). One droplet for the file; the tests run in order on it.
const key = quarryKey();
const serversFleet = uniqueFleet('tdhksim');
const fleet = uniqueFleet('tdhk');
const sim = new DigitalOceanSimulator(serversFleet);
const progress: Progress[] = [];
let settings: Record<string, unknown>;
let droplet: DigitalOceanServer | undefined;
let pinned = '';

test.before(async () => {
  await sim.start();
  settings = {
    provider: 'digitalocean', token: sim.token, baseUrl: sim.baseUrl, fleet, privateKey: key.privateKey,
    pollIntervalMs: 100, bootTimeoutMs: 150_000,
  };
});
test.after.always(async () => {
  if (droplet) await createProvider(settings).remove(droplet.id).catch(() => undefined);
  await sim.close();
  await removeFleet(serversFleet);
});
test.afterEach.always((t) => {
  t.deepEqual(sim.violations.splice(0), [], 'every request and response matched the OpenAPI description');
});

const creates = () => sim.requests.filter((r) => r.method === 'POST' && r.path === '/v2/droplets' && r.status === 202);
const userDataOf = (body: unknown) => parse(String((body as { user_data: string }).user_data)) as { ssh_keys?: Record<string, string>; ssh_deletekeys?: boolean; ssh_genkeytypes?: string[] };
/** sshd's log lines of logins with the driver's quarry key (not the simulator's own). */
const driverLogins = (log: string) => log.split('\n').filter((line) => /Accepted publickey for root/.test(line) && line.includes(hostKeyFingerprint(key.publicKey)));

test.serial('the user data carries an ed25519 host key; the droplet answers with exactly that key and is accepted', async (t) => {
  const provider = createProvider(settings, { onProgress: (p) => progress.push(p) });
  droplet = (await provider.add('s-1vcpu-1gb')) as DigitalOceanServer;

  const config = userDataOf(creates().at(-1)?.body);
  t.is(config.ssh_deletekeys, true);
  t.deepEqual(config.ssh_genkeytypes, []);
  t.deepEqual(Object.keys(config.ssh_keys ?? {}).sort(), ['ed25519_private', 'ed25519_public']);
  t.regex(config.ssh_keys?.ed25519_private ?? '', /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  pinned = hostKeyOf(config.ssh_keys?.ed25519_public ?? '');
  t.regex(pinned, /^ssh-ed25519 AAAA/);

  // The record carries the pin from the start, and the server shows exactly that key.
  t.is(droplet.ssh.hostKey, pinned);
  const answer = await onServer(droplet, key.privateKey, 'cat /etc/ssh/ssh_host_ed25519_key.pub; ls /etc/ssh | grep ^ssh_host_');
  t.is(answer.code, 0, answer.stderr);
  const [shown, ...files] = answer.stdout.trim().split('\n');
  t.is(hostKeyOf(shown ?? ''), pinned);
  t.deepEqual(files, ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub'], 'ssh_deletekeys took the image\'s keys and no other type was made');
  t.is(driverLogins(await sim.serverLog(droplet.digitalocean.dropletId)).length >= 2, true, 'sshd logs the driver\'s logins (the check below is not vacuous)');

  t.true(progress.some((p) => p.server === droplet?.id && p.message.includes(`host key ${hostKeyFingerprint(pinned)} (pinned)`)));
  t.false(JSON.stringify(progress).includes('PRIVATE KEY'), 'the private host key is never in a message');
});

test.serial('after a new provider instance (as after an HQ restart), the pin from HQ\'s records still holds', async (t) => {
  if (!droplet) return t.fail('no droplet');
  // What HQ does on start: the provider is made with the records it kept (servers/<id>/settings.json).
  const stored = JSON.parse(JSON.stringify(droplet)) as Server;
  const restarted = createProvider(settings, { known: [stored] });
  t.is((await restarted.get(droplet.id))?.ssh.hostKey, pinned);
  t.is((await restarted.list()).find((s) => s.id === droplet?.id)?.ssh.hostKey, pinned);
  // A resize ends by reaching the server over SSH: pinned, not trusted on first use again.
  const seen: Progress[] = [];
  restarted.on('progress', (p) => seen.push(p));
  const after = await restarted.resize(droplet.id, 's-2vcpu-2gb');
  t.is(after.ssh.hostKey, pinned);
  t.false(seen.some((p) => /no pinned host key/.test(p.message)), seen.map((p) => p.message).join('\n'));
  droplet = after as DigitalOceanServer;
});

test.serial('a server with no pinned key (made before pinning) is pinned on first use once, and says so', async (t) => {
  if (!droplet) return t.fail('no droplet');
  const legacy = { ...droplet, ssh: { ...droplet.ssh, hostKey: null } };
  const provider = createProvider(settings, { known: [legacy] });
  t.is((await provider.get(droplet.id))?.ssh.hostKey, null);
  const seen: Progress[] = [];
  provider.on('progress', (p) => seen.push(p));
  const after = await provider.resize(droplet.id, 's-1vcpu-1gb');
  t.is(after.ssh.hostKey, pinned, 'pinned to the key it showed');
  t.true(seen.some((p) => p.message === `server ${droplet?.id} had no pinned host key (made before quarry pinned them); pinned the one it showed now, ${hostKeyFingerprint(pinned)}`));
  t.is((await provider.get(droplet.id))?.ssh.hostKey, pinned, 'and kept for the provider\'s later reaches');
  droplet = after as DigitalOceanServer;
});

test.serial('a server whose host key was swapped is refused by every SSH reach with a typed error naming it and both fingerprints; nothing runs on it', async (t) => {
  if (!droplet) return t.fail('no droplet');
  const id = droplet.digitalocean.dropletId;
  const before = driverLogins(await sim.serverLog(id)).length;
  const other = await sim.replaceHostKey(id);
  const expected = { server: droplet.id, expected: hostKeyFingerprint(pinned), shown: hostKeyFingerprint(other) };
  t.not(expected.shown, expected.expected);

  // A plain SSH reach with the record.
  const direct = await t.throwsAsync(onServer({ ...droplet, ssh: { ...droplet.ssh } }, key.privateKey, 'touch /tmp/ran'), { instanceOf: HostKeyMismatchError });
  t.like(direct, { expected: expected.expected, shown: expected.shown });
  // The provider's own reach (a resize ends with one), after a restart.
  const restarted = createProvider(settings, { known: [droplet] });
  const resized = await t.throwsAsync(restarted.resize(droplet.id, 's-2vcpu-2gb'), { instanceOf: HostKeyMismatchError });
  t.like(resized, expected);
  t.true(resized?.message.includes(`server ${droplet.id} `), resized?.message);
  t.true(resized?.message.includes(expected.expected) && resized.message.includes(expected.shown), resized?.message);
  // HQ's reach of the server's docker engine (launcher), as the grid makes it from the record.
  const engine = await t.throwsAsync(connectEngine({ host: droplet.ssh.host, port: droplet.ssh.port, user: droplet.ssh.user, privateKey: key.privateKey, hostKey: droplet.ssh.hostKey }, { name: droplet.id }), { instanceOf: RemoteEngineError });
  t.is(engine?.reason, 'host-key');
  t.true(engine?.cause instanceof HostKeyMismatchError);
  t.true(engine?.message.includes(expected.expected) && engine.message.includes(expected.shown), engine?.message);

  t.is(driverLogins(await sim.serverLog(id)).length, before, 'the quarry key never logged in after the swap');
  t.is((await sim.inServer(id, 'test -e /tmp/ran && echo ran || echo no')).trim(), 'no');
});

test.serial('a new droplet that comes up with another host key is refused, and deleted again', async (t) => {
  const provider = createProvider(settings);
  const before = (await provider.list()).map((s) => s.id).sort();
  sim.ignoreHostKeyOfNextDroplet();
  const error = await t.throwsAsync(provider.add('s-1vcpu-1gb'), { instanceOf: HostKeyMismatchError });
  const deleted = sim.requests.filter((r) => r.method === 'DELETE').at(-1);
  const dropletId = Number(/\/v2\/droplets\/(\d+)$/.exec(deleted?.path ?? '')?.[1]);
  t.is(error?.server, `do-${dropletId}`);
  t.is(error?.expected, hostKeyFingerprint(userDataOf(creates().at(-1)?.body).ssh_keys?.ed25519_public ?? ''));
  t.regex(error?.shown ?? '', /^SHA256:/);
  t.not(error?.shown, error?.expected);
  t.deepEqual((await provider.list()).map((s) => s.id).sort(), before, 'the droplet is gone');
  const log = await sim.serverLog(dropletId);
  t.true(log.includes('Server listening'), 'the log is the server\'s own');
  t.deepEqual(driverLogins(log), [], 'the quarry key never logged in');
});
