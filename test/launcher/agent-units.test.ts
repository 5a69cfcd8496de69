import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { ConfigInvalidError, validateConfig } from '../../config/index.js';
import {
  agentSettingsSchema, filePathOf, loadAgentSettings, loadKey, loadRecord, parseLoadavg, parseMeminfo, pickAddress,
  ProcParseError, readHostStats, serverKey, serverRecord,
} from '../../launcher/agent/index.js';
import { tarOf } from '../../launcher/agent/tar.js';
import { quarry } from '../support/cli.js';

const URL_SHOWN = 'file:///etc/quarry/agent.json';
const good = { server: 'demo-3fa2c1', etcd: ['http://10.0.0.1:2379'] };

test('settings: defaults for everything but server and etcd', (t) => {
  t.deepEqual(validateConfig(agentSettingsSchema, good, URL_SHOWN), {
    server: 'demo-3fa2c1', etcd: ['http://10.0.0.1:2379'], address: undefined, ttlSeconds: 10, loadIntervalMs: 5000,
    dockerSocket: '/var/run/docker.sock', filesRoot: undefined, hostsFile: undefined, stateDir: '/var/lib/quarry', tls: undefined, locknet: undefined, caretaker: true, metrics: true,
  });
  t.deepEqual(validateConfig(agentSettingsSchema, { ...good, etcd: 'http://a:2379', address: '172.30.0.2', ttlSeconds: 2, filesRoot: '/srv/files' }, URL_SHOWN),
    { ...good, etcd: ['http://a:2379'], address: '172.30.0.2', ttlSeconds: 2, loadIntervalMs: 5000, dockerSocket: '/var/run/docker.sock', filesRoot: '/srv/files', hostsFile: undefined, stateDir: '/var/lib/quarry', tls: undefined, locknet: undefined, caretaker: true, metrics: true });
});

const faults: Array<[string, unknown, string, RegExp]> = [
  ['server missing', { etcd: good.etcd }, 'server', /is required/],
  ['server with a slash', { ...good, server: 'a/b' }, 'server', /must be a server id/],
  ['server empty', { ...good, server: '' }, 'server', /must be a server id/],
  ['etcd missing', { server: 's1' }, 'etcd', /is required/],
  ['etcd empty', { ...good, etcd: [] }, 'etcd', /non-empty list/],
  ['etcd not a URL', { ...good, etcd: ['10.0.0.1:2379'] }, 'etcd.0', /must be a URL/],
  ['etcd of another scheme', { ...good, etcd: ['http://a:1', 'unix:///run/etcd'] }, 'etcd.1', /must be a URL \(http or https\)/],
  ['ttl zero', { ...good, ttlSeconds: 0 }, 'ttlSeconds', /from 1 to 3600/],
  ['ttl fractional', { ...good, ttlSeconds: 2.5 }, 'ttlSeconds', /integer/],
  ['interval too short', { ...good, loadIntervalMs: 10 }, 'loadIntervalMs', /at least 100/],
  ['socket relative', { ...good, dockerSocket: 'docker.sock' }, 'dockerSocket', /absolute path/],
  ['files root relative', { ...good, filesRoot: 'files' }, 'filesRoot', /absolute path/],
  ['address empty', { ...good, address: '' }, 'address', /non-empty string/],
  ['unknown key', { ...good, ttl: 5 }, 'ttl', /not a known setting/],
  ['hosts file relative', { ...good, hostsFile: 'etc/hosts' }, 'hostsFile', /absolute path/],
  ['tls without its key', { ...good, tls: { ca: 'C', cert: 'X' } }, 'tls.key', /is required/],
  ['a public port that is no port', { ...good, locknet: { public: [22, 70000] } }, 'locknet.public.1', /0 to 65535|port/],
];
for (const [what, document, key, problem] of faults) {
  test(`settings: ${what} is an error naming the URL and "${key}"`, (t) => {
    const err = t.throws(() => validateConfig(agentSettingsSchema, document, URL_SHOWN), { instanceOf: ConfigInvalidError });
    t.is((err as ConfigInvalidError).key, key);
    t.true(err!.message.startsWith(`config ${URL_SHOWN}: key "${key}": `), err!.message);
    t.regex(err!.message, problem);
  });
}

test('settings: loaded from a file:// URL; a missing one names the URL', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-agent-settings-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'agent.json'), JSON.stringify({ ...good, ttlSeconds: 3 }));
  t.is((await loadAgentSettings(pathToFileURL(join(dir, 'agent.json')).href)).ttlSeconds, 3);
  await t.throwsAsync(loadAgentSettings(`file://${dir}/none.json`), { message: `config file://${dir}/none.json: cannot be read: no such file` });
});

test('quarry agent: no --config is a usage error; a bad setting names URL and key', async (t) => {
  const none = await quarry(['agent']);
  t.is(none.code, 2);
  t.regex(none.stderr, /--config URL is required/);
  t.regex(none.stderr, /usage: quarry agent --config URL/);
  const dir = mkdtempSync(join(tmpdir(), 'quarry-agent-settings-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'agent.json'), JSON.stringify({ server: 's1', etcd: ['http://127.0.0.1:1'], loadIntervalMs: 'often' }));
  const bad = await quarry(['agent', '--config', join(dir, 'agent.json')]);
  t.is(bad.code, 1);
  t.is(bad.stderr, `config file://${dir}/agent.json: key "loadIntervalMs": must be an integer of at least 100, got "often"\n`);
  t.regex((await quarry(['help'])).stdout, /agent +the per-server caretaker/);
});

const loadavgs: Array<[string, { load1: number; load5: number; load15: number } | RegExp]> = [
  ['0.52 0.58 0.59 2/345 12345\n', { load1: 0.52, load5: 0.58, load15: 0.59 }],
  ['12.00 3.10 0.00 1/1 1', { load1: 12, load5: 3.1, load15: 0 }],
  ['0 0 0 1/1 1', { load1: 0, load5: 0, load15: 0 }],
  ['', /expected three load averages/],
  ['0.52 0.58', /expected three load averages/],
  ['0.52 x 0.59 1/2 3', /expected three load averages/],
  ['-1 0 0 1/1 1', /expected three load averages/],
];
for (const [text, expected] of loadavgs) {
  test(`/proc/loadavg ${JSON.stringify(text)}`, (t) => {
    if (expected instanceof RegExp) {
      const err = t.throws(() => parseLoadavg(text), { instanceOf: ProcParseError, message: expected });
      t.true(err!.message.startsWith('/proc/loadavg: '));
    } else {
      t.deepEqual(parseLoadavg(text), expected);
    }
  });
}

const meminfos: Array<[string, string, { totalMb: number; availableMb: number } | RegExp]> = [
  ['a modern kernel', 'MemTotal:        2030596 kB\nMemFree:          123456 kB\nMemAvailable:    1536000 kB\nBuffers: 1 kB\n', { totalMb: 1983, availableMb: 1500 }],
  ['no MemAvailable (before 3.14)', 'MemTotal: 1048576 kB\nMemFree: 102400 kB\nBuffers: 51200 kB\nCached: 204800 kB\n', { totalMb: 1024, availableMb: 350 }],
  ['odd lines among them', 'MemTotal: 4096 kB\nHugePages_Total:       0\nDirectMap4k: 1 kB\nnonsense\nMemAvailable: 2048 kB\n', { totalMb: 4, availableMb: 2 }],
  ['available above total is capped', 'MemTotal: 2048 kB\nMemAvailable: 4096 kB\n', { totalMb: 2, availableMb: 2 }],
  ['no MemTotal', 'MemFree: 1 kB\n', /no MemTotal/],
  ['no free memory figure', 'MemTotal: 1024 kB\n', /neither MemAvailable nor MemFree/],
];
for (const [what, text, expected] of meminfos) {
  test(`/proc/meminfo: ${what}`, (t) => {
    if (expected instanceof RegExp) t.throws(() => parseMeminfo(text), { instanceOf: ProcParseError, message: expected });
    else t.deepEqual(parseMeminfo(text), expected);
  });
}

test('/proc of this machine reads as sane numbers', async (t) => {
  const stats = await readHostStats();
  t.true(Number.isInteger(stats.cpus) && stats.cpus >= 1);
  t.true(stats.load1 >= 0);
  t.true(stats.memory.totalMb > 0 && stats.memory.availableMb >= 0 && stats.memory.availableMb <= stats.memory.totalMb);
});

test('records: keys and values as DESIGN.md has them', (t) => {
  t.is(serverKey('demo-3fa2c1'), '/quarry/servers/demo-3fa2c1');
  t.is(loadKey('demo-3fa2c1'), '/quarry/servers/demo-3fa2c1/load');
  const startedAt = new Date('2026-11-22T00:58:01.000Z');
  t.deepEqual(serverRecord({ id: 's1', address: '172.30.0.2', version: '0.1.0', pid: 1, startedAt, dockerVersion: '20.10.24' }), {
    id: 's1', address: '172.30.0.2', agent: { version: '0.1.0', pid: 1, startedAt: '2026-11-22T00:58:01.000Z' }, docker: { version: '20.10.24' },
  });
  t.deepEqual(serverRecord({ id: 's1', address: 'a', version: 'v', pid: 7, startedAt, dockerVersion: null }).docker, { version: null });
  const host = { cpus: 2, load1: 0.25, memory: { totalMb: 1024, availableMb: 512 } };
  t.deepEqual(loadRecord(startedAt, host, 3), { at: '2026-11-22T00:58:01.000Z', cpus: 2, load1: 0.25, memory: { totalMb: 1024, availableMb: 512 }, containers: 3 });
  t.is(loadRecord(startedAt, host, null).containers, null);
});

const paths: Array<[string, string | undefined]> = [
  ['/quarry/config/files/etc/hosts', 'etc/hosts'],
  ['/quarry/config/files/hosts', 'hosts'],
  ['/quarry/config/files/a/b/c.conf', 'a/b/c.conf'],
  ['/quarry/config/files/', undefined],
  ['/quarry/config/files//etc/hosts', undefined],
  ['/quarry/config/files/../x', undefined],
  ['/quarry/config/files/a/../../x', undefined],
  ['/quarry/config/files/./x', undefined],
  ['/quarry/config/files/a/', undefined],
  ['/quarry/config/files/a\\b', undefined],
  ['/quarry/config/files/.quarry-files.json', undefined],
  ['/quarry/config/other', undefined],
];
for (const [key, expected] of paths) {
  test(`files: ${key} → ${expected ?? 'ignored'}`, (t) => {
    t.is(filePathOf(key), expected);
  });
}

test('address: the first IPv4 of a real interface, never loopback or a docker bridge', (t) => {
  const v4 = (address: string, internal = false) => ({ address, family: 'IPv4' as const, internal, netmask: '', mac: '', cidr: null });
  const v6 = { address: 'fe80::1', family: 'IPv6' as const, internal: false, netmask: '', mac: '', cidr: null, scopeid: 0 };
  t.is(pickAddress({ lo: [v4('127.0.0.1', true)], docker0: [v4('172.17.0.1')], 'br-0a1b2c': [v4('172.18.0.1')], eth0: [v6, v4('10.0.0.5')] }, 'h'), '10.0.0.5');
  t.is(pickAddress({ lo: [v4('127.0.0.1', true)], docker0: [v4('172.17.0.1')] }, 'host-name'), 'host-name');
});

test('tar: what tar itself reads back, folders and a file with its mode', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-agent-tar-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const content = `${JSON.stringify({ long: 'x'.repeat(700) })}\n`;
  writeFileSync(join(dir, 'a.tar'), tarOf([{ path: 'etc' }, { path: 'etc/quarry' }, { path: 'etc/quarry/agent.json', content, mode: 0o600 }]));
  t.is(execFileSync('tar', ['-tvf', join(dir, 'a.tar')]).toString().split('\n').filter(Boolean).map((l) => `${l.split(/\s+/)[0]} ${l.split(/\s+/).at(-1)}`).join('\n'),
    'drwxr-xr-x etc/\ndrwxr-xr-x etc/quarry/\n-rw------- etc/quarry/agent.json');
  execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
  t.is(execFileSync('cat', [join(dir, 'etc/quarry/agent.json')]).toString(), content);
  t.throws(() => tarOf([{ path: '/etc/x', content: '' }]), { message: /relative path/ });
});
