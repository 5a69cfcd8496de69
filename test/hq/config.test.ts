import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { ConfigInvalidError, ConfigSyntaxError, ConfigUnreadableError } from '../../config/index.js';
import { loadHqConfig } from '../../hq/index.js';

async function file(t: { teardown(fn: () => Promise<void>): void }, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'quarry-hq-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'hq.json');
  await writeFile(path, text);
  return pathToFileURL(path).href;
}

test('no config: defaults that run on this machine, home from QUARRY_HOME', async (t) => {
  const config = await loadHqConfig(undefined, { env: { QUARRY_HOME: '/tmp/quarry-home-x' } });
  t.deepEqual(config, {
    home: '/tmp/quarry-home-x', host: '0.0.0.0', sshPort: 2222, apiHost: '127.0.0.1', apiPort: 7070,
    routerPort: 8080, routerHttpsPort: undefined, acme: undefined, etcd: undefined, etcdPort: 2479, grid: undefined, locknet: false,
    buildTimeout: 15 * 60_000, buildMemory: 2048 * 1024 * 1024, maxPushSize: 500 * 1024 * 1024, keepReleases: 5,
    sshAuthTimeout: 60_000, sshMaxUnauthenticated: 100, sshMaxUnauthenticatedPerAddress: 10, pushIdleTimeout: 5 * 60_000, pushLockWait: 10 * 60_000,
  });
});

test('a file:// document sets what it names; a relative home is resolved', async (t) => {
  const at = await file(t, JSON.stringify({ home: 'state', host: '127.0.0.1', sshPort: 0, etcd: 'http://127.0.0.1:2379' }));
  const config = await loadHqConfig(at, { env: {} });
  t.is(config.home, join(process.cwd(), 'state'));
  t.is(config.host, '127.0.0.1');
  t.is(config.sshPort, 0);
  t.deepEqual(config.etcd, ['http://127.0.0.1:2379']);
});

test('a file that cannot be read names the URL', async (t) => {
  const err = await t.throwsAsync(loadHqConfig('file:///nonexistent/quarry/hq.json'), { instanceOf: ConfigUnreadableError });
  t.is(err?.message, 'config file:///nonexistent/quarry/hq.json: cannot be read: no such file');
});

test('a URL that is no URL says so', async (t) => {
  const err = await t.throwsAsync(loadHqConfig('http://[bad'), { instanceOf: ConfigUnreadableError });
  t.regex(err?.message ?? '', /^config http:\/\/\[bad: cannot be read: not a valid URL/);
});

test('bad JSON names the URL', async (t) => {
  const at = await file(t, '{"sshPort": 22,}');
  const err = await t.throwsAsync(loadHqConfig(at), { instanceOf: ConfigSyntaxError });
  t.true(err?.message.startsWith(`config ${at}: is not valid JSON`));
});

test('an unknown key names the URL and the key, and lists the known ones', async (t) => {
  const at = await file(t, '{"sshport": 22}');
  const err = await t.throwsAsync(loadHqConfig(at), { instanceOf: ConfigInvalidError });
  t.is(err?.message, `config ${at}: key "sshport": is not a known setting ` +
    '(known: home, host, sshPort, apiHost, apiPort, routerPort, routerHttpsPort, acme, etcd, etcdPort, grid, locknet, buildTimeout, buildMemory, maxPushSize, keepReleases, ' +
    'sshAuthTimeout, sshMaxUnauthenticated, sshMaxUnauthenticatedPerAddress, pushIdleTimeout, pushLockWait)');
});

test('grid: defaults, and faults named by their dotted key; the provider\'s own keys are pacific\'s to check', async (t) => {
  const ok = await file(t, '{"grid": {"provider": {"provider": "docker", "fleet": "f"}}}');
  t.deepEqual((await loadHqConfig(ok)).grid, { provider: { provider: 'docker', fleet: 'f' }, min: 1, max: 10, size: 's-1vcpu-1gb', advertise: undefined, locknet: true, registry: true, registryPort: 0, routers: 1 });
  const none = await file(t, '{"grid": {"min": 2}}');
  t.is((await t.throwsAsync(loadHqConfig(none)))?.message, `config ${none}: key "grid.provider": is required: an object with "provider": docker, static or digitalocean`);
  const bare = await file(t, '{"grid": {"provider": {"fleet": "f"}}}');
  t.is((await t.throwsAsync(loadHqConfig(bare)))?.message, `config ${bare}: key "grid.provider.provider": is required: docker, static or digitalocean`);
  const min = await file(t, '{"grid": {"provider": {"provider": "docker"}, "min": -1}}');
  t.regex((await t.throwsAsync(loadHqConfig(min)))?.message ?? '', /key "grid\.min": must be an integer from 0 to 1000, got -1/);
  const routers = await file(t, '{"grid": {"provider": {"provider": "docker"}, "routers": "two"}}');
  t.regex((await t.throwsAsync(loadHqConfig(routers)))?.message ?? '', /key "grid\.routers": must be an integer from 0 to 1000, got "two"/);
  const noRouters = await file(t, '{"grid": {"provider": {"provider": "docker"}, "routers": 0}}');
  t.is((await loadHqConfig(noRouters)).grid?.routers, 0);
  const typo = await file(t, '{"grid": {"provider": {"provider": "docker"}, "maximum": 3}}');
  t.regex((await t.throwsAsync(loadHqConfig(typo)))?.message ?? '', /key "grid\.maximum": is not a known setting/);
});

test('HTTPS and ACME are off unless set; acme needs an email and takes Let\'s Encrypt\'s directory by default', async (t) => {
  const on = await file(t, '{"routerHttpsPort": 8443, "acme": {"email": "ops@example.com"}}');
  const config = await loadHqConfig(on, { env: {} });
  t.is(config.routerHttpsPort, 8443);
  t.deepEqual(config.acme, { directory: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com', ca: undefined, renewDays: 30 });
  const noEmail = await file(t, '{"acme": {}}');
  t.regex((await t.throwsAsync(loadHqConfig(noEmail)))?.message ?? '', /key "acme\.email"/);
  const plain = await file(t, '{"acme": {"email": "a@b.c", "directory": "http://acme.test/dir"}}');
  t.regex((await t.throwsAsync(loadHqConfig(plain)))?.message ?? '', /key "acme\.directory": must be a URL \(https\)/);
});

test('a wrong type names the URL and the key', async (t) => {
  const port = await file(t, '{"apiPort": "7070"}');
  t.is((await t.throwsAsync(loadHqConfig(port)))?.message, `config ${port}: key "apiPort": must be an integer from 0 to 65535, got "7070"`);
  const etcd = await file(t, '{"etcd": ["http://127.0.0.1:2379", "127.0.0.1:2380"]}');
  t.is((await t.throwsAsync(loadHqConfig(etcd)))?.message, `config ${etcd}: key "etcd.1": must be a URL (http or https), got "127.0.0.1:2380"`);
  const etcdPort = await file(t, '{"etcdPort": 65535}');
  t.regex((await t.throwsAsync(loadHqConfig(etcdPort)))?.message ?? '', /key "etcdPort": must be an integer from 0 to 65534/);
  const home = await file(t, '{"home": ""}');
  t.regex((await t.throwsAsync(loadHqConfig(home)))?.message ?? '', /key "home": must be a non-empty string/);
});

test('limits: durations and sizes in their units, or plain seconds and bytes; anything else names the key', async (t) => {
  const cases: Array<[Record<string, unknown>, Partial<Record<'buildTimeout' | 'buildMemory' | 'maxPushSize', number>>]> = [
    [{ buildTimeout: '15m' }, { buildTimeout: 900_000 }],
    [{ buildTimeout: '90s' }, { buildTimeout: 90_000 }],
    [{ buildTimeout: 90 }, { buildTimeout: 90_000 }],
    [{ buildTimeout: '1h' }, { buildTimeout: 3_600_000 }],
    [{ buildTimeout: '30' }, { buildTimeout: 30_000 }],
    [{ maxPushSize: '200MB' }, { maxPushSize: 200 * 1024 * 1024 }],
    [{ maxPushSize: '1GB' }, { maxPushSize: 1024 * 1024 * 1024 }],
    [{ maxPushSize: '100 KB' }, { maxPushSize: 100 * 1024 }],
    [{ maxPushSize: 4096 }, { maxPushSize: 4096 }],
    [{ buildMemory: '512mb' }, { buildMemory: 512 * 1024 * 1024 }],
  ];
  for (const [document, expected] of cases) {
    const config = await loadHqConfig(await file(t, JSON.stringify(document)));
    for (const [key, value] of Object.entries(expected)) t.is(config[key as keyof typeof expected], value, JSON.stringify(document));
  }
  const wrong: Array<[Record<string, unknown>, RegExp]> = [
    [{ buildTimeout: '15 parsecs' }, /key "buildTimeout": must be a duration like "15m", "90s" or a number of seconds, got "15 parsecs"/],
    [{ buildTimeout: 0 }, /key "buildTimeout": must be a duration/],
    [{ buildTimeout: true }, /key "buildTimeout": must be a duration/],
    [{ maxPushSize: '1TB' }, /key "maxPushSize": must be a size like "500MB" or "1GB", or a number of bytes, of at least 1 byte, got "1TB"/],
    [{ maxPushSize: -1 }, /key "maxPushSize": must be a size/],
    [{ buildMemory: '1MB' }, /key "buildMemory": must be a size like "500MB" or "1GB", or a number of bytes, of at least 6 MB, got "1MB"/],
  ];
  for (const [document, message] of wrong) {
    const at = await file(t, JSON.stringify(document));
    t.regex((await t.throwsAsync(loadHqConfig(at), { instanceOf: ConfigInvalidError }))?.message ?? '', message);
  }
});

test('keepReleases: 5 by default, any integer of at least 1; anything else names the key', async (t) => {
  t.is((await loadHqConfig(undefined, { env: {} })).keepReleases, 5);
  t.is((await loadHqConfig(await file(t, '{"keepReleases": 1}'))).keepReleases, 1);
  t.is((await loadHqConfig(await file(t, '{"keepReleases": 30}'))).keepReleases, 30);
  for (const value of ['0', '-2', '2.5', '"5"', 'null', 'true']) {
    const at = await file(t, `{"keepReleases": ${value}}`);
    const err = await t.throwsAsync(loadHqConfig(at), { instanceOf: ConfigInvalidError });
    t.is(err?.message, `config ${at}: key "keepReleases": must be an integer of at least 1, got ${JSON.stringify(JSON.parse(value))}`, value);
  }
});

test('the git endpoint\'s limits: durations and counts; a count below 1 names the key', async (t) => {
  const config = await loadHqConfig(await file(t, JSON.stringify({
    sshAuthTimeout: '20s', sshMaxUnauthenticated: 30, sshMaxUnauthenticatedPerAddress: 3, pushIdleTimeout: '2m', pushLockWait: 900,
  })));
  t.like(config, { sshAuthTimeout: 20_000, sshMaxUnauthenticated: 30, sshMaxUnauthenticatedPerAddress: 3, pushIdleTimeout: 120_000, pushLockWait: 900_000 });
  for (const [document, message] of [
    [{ sshMaxUnauthenticated: 0 }, /key "sshMaxUnauthenticated": must be an integer of at least 1, got 0/],
    [{ sshMaxUnauthenticatedPerAddress: 2.5 }, /key "sshMaxUnauthenticatedPerAddress": must be an integer of at least 1/],
    [{ sshAuthTimeout: 'soon' }, /key "sshAuthTimeout": must be a duration/],
    [{ pushLockWait: 0 }, /key "pushLockWait": must be a duration/],
  ] as const) {
    const at = await file(t, JSON.stringify(document));
    t.regex((await t.throwsAsync(loadHqConfig(at), { instanceOf: ConfigInvalidError }))?.message ?? '', message);
  }
});
