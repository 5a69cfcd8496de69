import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigInvalidError } from '../../config/index.js';
import {
  createProvider, NoCapacityError, UnsupportedOperationError, type Server,
} from '../../pacific/index.js';
import { freePort } from '../support/ports.js';
import { onServer, quarryKey } from './fleet.js';
import ssh2 from 'ssh2';

// A real sshd on loopback (RUNBOOK "sshd") that lets the quarry key in as root: a machine
// "the user already has". Its docker engine is this machine's.
const key = quarryKey();
const dir = mkdtempSync(join(tmpdir(), 'quarry-static-'));
let sshd: ChildProcess | undefined;
let port = 0;

test.before(async () => {
  port = await freePort();
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation folder
  // The provider's own wait for the sshd covers the time it takes to listen.
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'host_key'), hostKey.private, { mode: 0o600 });
  writeFileSync(join(dir, 'authorized_keys'), `${key.publicKey}\n`);
  sshd = spawn('/usr/sbin/sshd', [
    '-D', '-e', '-f', '/dev/null', '-p', String(port), '-o', 'ListenAddress=127.0.0.1',
    '-o', `HostKey=${join(dir, 'host_key')}`, '-o', `AuthorizedKeysFile=${join(dir, 'authorized_keys')}`,
    '-o', 'StrictModes=no', '-o', 'PasswordAuthentication=no', '-o', 'PermitRootLogin=prohibit-password',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
});
test.after.always(() => {
  sshd?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test.serial('a listed machine joins once its sshd and docker answer, with its measured size; then there is no more', async (t) => {
  const provider = createProvider({ provider: 'static', servers: [`ssh://root@127.0.0.1:${port}`], privateKey: key.privateKey, bootTimeoutMs: 30_000 });
  const added: string[] = [];
  provider.on('added', (server) => { added.push(server.id); });
  const server = await provider.add('s-1vcpu-1gb');
  t.is(server.id, `static-127-0-0-1-${port}`);
  t.like(server, { provider: 'static', address: '127.0.0.1', ssh: { host: '127.0.0.1', port, user: 'root' }, state: 'active' });
  t.is(server.size.slug, null, 'a static machine has no slug: its size is measured');
  t.true(server.size.memory > 0 && server.size.cpus >= 1);
  t.regex(server.ssh.hostKey ?? '', /^ssh-ed25519 /);
  t.deepEqual(added, [server.id]);
  t.deepEqual((await provider.list()).map((s) => s.id), [server.id]);
  const result = await onServer(server, key.privateKey, "docker info --format '{{.ServerVersion}}'");
  t.is(result.code, 0);

  await t.throwsAsync(provider.add('s-1vcpu-1gb'), { instanceOf: NoCapacityError, message: /all 1 machines in settings.servers have joined/ });
  await t.throwsAsync(provider.resize(server.id, 's-2vcpu-4gb'), { instanceOf: UnsupportedOperationError, message: /cannot be resized by quarry: it is a machine you manage/ });

  await provider.remove(server.id);
  t.deepEqual(await provider.list(), [], 'leaving does not touch the machine, it only leaves the fleet');
  const again = await provider.add(512);
  t.is(again.id, server.id, 'and it can join again');
});

test.serial('the records HQ kept say which machines had joined', async (t) => {
  const settings = { provider: 'static', servers: [`ssh://root@127.0.0.1:${port}`], privateKey: key.privateKey };
  const first = createProvider(settings);
  const joined: Server = await first.add(1024);
  const later = createProvider(settings, { known: [joined] });
  t.deepEqual((await later.list()).map((s) => s.id), [joined.id]);
});

test('settings errors name the key', (t) => {
  const base = { provider: 'static', privateKey: key.privateKey };
  t.throws(() => createProvider({ ...base, servers: ['ssh://root@10.0.0.1:22', 'http://nope'] }), { instanceOf: ConfigInvalidError, message: /key "servers\.1": must be ssh:\/\/user@host:port/ });
  t.throws(() => createProvider({ ...base, servers: ['ssh://a@h:22', 'ssh://a@h'] }), { instanceOf: ConfigInvalidError, message: /key "servers\.1": ssh:\/\/a@h is listed twice/ });
  t.throws(() => createProvider({ ...base, servers: [] }), { instanceOf: ConfigInvalidError, message: /key "servers"/ });
  t.throws(() => createProvider({ provider: 'static', servers: ['ssh://h'] }), { instanceOf: ConfigInvalidError, message: /key "privateKeyFile": is required/ });
  t.throws(() => createProvider({ ...base, servers: ['ssh://h'], privateKey: 'not a key' }), { instanceOf: ConfigInvalidError, message: /key "privateKey": is not an unencrypted/ });
  t.throws(() => createProvider({ provider: 'azure' }), { instanceOf: ConfigInvalidError, message: /key "provider": must be one of docker, static, digitalocean/ });
  t.throws(() => createProvider({ provider: 'docker', privateKey: key.privateKey, flet: 'x' }), { instanceOf: ConfigInvalidError, message: /key "flet": is not a known setting/ });
});
