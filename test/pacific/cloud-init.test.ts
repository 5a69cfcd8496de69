import test from 'ava';
import ssh2 from 'ssh2';
import { parse } from 'yaml';
import { cloudInit, hostKeyFingerprint, newHostKey, PacificError, sameHostKey, type CloudInitOptions } from '../../pacific/index.js';

// The cloud-init user data as text (pure): what each option puts in, as cloud-init will read
// it (parsed as YAML), and the inputs it refuses. Plus the host keys newHostKey makes.
const quarry = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv9Vjjd5m2TdeXQmHkOd5UPr9H+2YZSUYgiBVrJ6Z0k quarry';
const host = newHostKey('quarry-host-test');

interface Parsed {
  ssh_keys?: Record<string, string>;
  ssh_deletekeys?: boolean;
  ssh_genkeytypes?: string[];
  packages: string[];
  write_files: Array<{ path: string; content: string; append?: boolean; permissions: string }>;
  runcmd: string[][];
}

const rows: Array<{ name: string; options: CloudInitOptions; check: (config: Parsed, text: string) => void }> = [
  {
    name: 'without a host key: docker, the quarry key for root, the agent unit, and no ssh_keys',
    options: { publicKey: quarry, agentImage: 'quarry/agent:latest' },
    check: (config) => {
      if (config.ssh_keys !== undefined || config.ssh_deletekeys !== undefined || config.ssh_genkeytypes !== undefined) throw new Error('host key settings present');
    },
  },
  {
    name: 'with a host key: ssh_keys with ed25519_private and ed25519_public, ssh_deletekeys true, ssh_genkeytypes empty',
    options: { publicKey: quarry, agentImage: 'quarry/agent:latest', hostKey: host },
    check: (config) => {
      if (config.ssh_keys?.ed25519_private !== host.privateKey) throw new Error('ed25519_private is not the private key, byte for byte');
      if (config.ssh_keys?.ed25519_public !== host.publicKey) throw new Error('ed25519_public is not the public key');
      if (Object.keys(config.ssh_keys).sort().join() !== 'ed25519_private,ed25519_public') throw new Error(`other keys: ${Object.keys(config.ssh_keys).join()}`);
      if (config.ssh_deletekeys !== true) throw new Error('ssh_deletekeys is not true');
      if (!Array.isArray(config.ssh_genkeytypes) || config.ssh_genkeytypes.length !== 0) throw new Error('ssh_genkeytypes is not []');
    },
  },
  {
    name: 'a host key whose private text lacks its last newline gets one',
    options: { publicKey: quarry, agentImage: 'quarry/agent:latest', hostKey: { ...host, privateKey: host.privateKey.trimEnd() } },
    check: (config) => {
      if (config.ssh_keys?.ed25519_private !== host.privateKey) throw new Error('not the private key with its newline');
    },
  },
  {
    name: 'an agent config URL and an image that needs quoting reach the unit quoted',
    options: { publicKey: quarry, agentImage: "registry.example.com/agent:it's", agentConfig: 'https://hq.example.com/agent.json?a=1&b=2', hostKey: host },
    check: (config) => {
      const unit = config.write_files.find((f) => f.path === '/etc/systemd/system/quarry-agent.service')?.content ?? '';
      if (!unit.includes(`'registry.example.com/agent:it'\\''s' agent --config 'https://hq.example.com/agent.json?a=1&b=2'`)) throw new Error(unit);
    },
  },
];

for (const row of rows) {
  test(`cloud-init: ${row.name}`, (t) => {
    const text = cloudInit(row.options);
    t.true(text.startsWith('#cloud-config\n'));
    const config = parse(text) as Parsed;
    // What every row has.
    t.deepEqual(config.packages, ['docker.io', 'iptables']);
    const keys = config.write_files.find((f) => f.path === '/root/.ssh/authorized_keys');
    t.like(keys, { content: `${row.options.publicKey}\n`, append: true, permissions: '0600' });
    t.deepEqual(config.runcmd.at(-1), ['systemctl', 'enable', '--now', 'quarry-agent']);
    t.notThrows(() => row.check(config, text));
  });
}

const refused: Array<{ name: string; options: CloudInitOptions; message: RegExp }> = [
  { name: 'a quarry key of two lines', options: { publicKey: `${quarry}\nssh-ed25519 AAAA other`, agentImage: 'a' }, message: /quarry public key must be one line/ },
  { name: 'a host public key of another type', options: { publicKey: quarry, agentImage: 'a', hostKey: { ...host, publicKey: 'ssh-rsa AAAAB3NzaC1yc2E= x' } }, message: /ssh-ed25519 BASE64/ },
  { name: 'a host public key of two lines', options: { publicKey: quarry, agentImage: 'a', hostKey: { ...host, publicKey: `${host.publicKey}\nssh-ed25519 AAAA` } }, message: /one line/ },
  { name: 'a host private key in PEM form', options: { publicKey: quarry, agentImage: 'a', hostKey: { ...host, privateKey: '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n' } }, message: /unencrypted OpenSSH private key/ },
  { name: 'a host private key with YAML in it', options: { publicKey: quarry, agentImage: 'a', hostKey: { ...host, privateKey: `${host.privateKey}runcmd: [[rm, -rf, /]]\n` } }, message: /unencrypted OpenSSH private key/ },
];

for (const row of refused) {
  test(`cloud-init refuses ${row.name} with a PacificError`, (t) => {
    const error = t.throws(() => cloudInit(row.options), { instanceOf: PacificError, message: row.message });
    t.false(error?.message.includes('PRIVATE KEY-----\n'), 'the message never carries a private key');
  });
}

test('newHostKey makes an ed25519 pair in OpenSSH form whose halves match, a new one each time', (t) => {
  const parsed = ssh2.utils.parseKey(host.privateKey);
  if (parsed instanceof Error) return t.fail(parsed.message);
  t.true(parsed.isPrivateKey());
  t.is(parsed.type, 'ssh-ed25519');
  t.is(parsed.comment, 'quarry-host-test');
  t.true(sameHostKey(`ssh-ed25519 ${parsed.getPublicSSH().toString('base64')}`, host.publicKey));
  t.regex(host.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} quarry-host-test$/);
  t.regex(hostKeyFingerprint(host.publicKey), /^SHA256:[A-Za-z0-9+/]{43}$/);
  const others = Array.from({ length: 20 }, () => newHostKey('x'));
  t.is(new Set(others.map((k) => k.publicKey)).size, 20);
  // Every one parses (ssh2's own generator makes about one in 256 that its parser refuses).
  for (const other of others) t.false(ssh2.utils.parseKey(other.privateKey) instanceof Error);
});
