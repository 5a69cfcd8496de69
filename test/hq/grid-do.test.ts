import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { join } from 'node:path';
import { startControl, type ControlHandle } from '../../hq/index.js';
import { hostKeyFingerprint, hostKeyOf, type Server } from '../../pacific/index.js';
import { startRouter, type Router } from '../../router/index.js';
import { DigitalOceanSimulator } from '../pacific/do-simulator.js';
import { removeFleet, uniqueFleet } from '../pacific/fleet.js';
import { docker } from '../support/docker.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { httpGet, httpGetWhenUp } from '../support/http.js';
import { commitAll, push, removeStackImages, startTestHq, tempDir, uniqueStack, type TestHq } from './harness.js';

// HQ on a DigitalOcean grid: the driver talks to the simulator, which checks every request and
// response against DigitalOcean's OpenAPI description and whose droplets are real
// docker-provider servers. The tests run in order on one stack.
const serversFleet = uniqueFleet('tgdosim');
const sim = new DigitalOceanSimulator(serversFleet);
let etcd: TestEtcd;
let router: Router;
let control: ControlHandle;
let t: TestHq;
const stack = uniqueStack('griddo');
const domain = `${stack}.localhost`;
const noProgress = { step() {}, info() {}, error() {} };
const doFleet = uniqueFleet('tgdo');
const controlConfig = () => ({
  routerPort: router.port,
  grid: {
    provider: { provider: 'digitalocean', token: sim.token, baseUrl: sim.baseUrl, fleet: doFleet, pollIntervalMs: 100, bootTimeoutMs: 150_000 },
    min: 1, max: 3, size: 's-1vcpu-1gb', advertise: undefined, locknet: true, registry: false, registryPort: 0, routers: 1,
  },
});

test.before(async () => {
  await sim.start();
  etcd = await startEtcd();
  router = await startRouter({ port: 0, host: '127.0.0.1', etcd: etcd.client, admin: { port: 0 } });
  let handle: ControlHandle | undefined;
  t = await startTestHq({ onRelease: (...args) => handle!.onRelease(...args) });
  handle = await startControl({
    home: t.home, etcd: etcd.client, docker, log: () => {}, drainMs: 300,
    config: controlConfig(),
  });
  control = handle;
});

test.after.always(async () => {
  await control?.close();
  await t?.close();
  await router?.close();
  await etcd?.stop();
  await sim.close();
  await removeFleet(serversFleet);
  await removeStackImages(stack);
});

test.afterEach.always((tt) => {
  tt.deepEqual(sim.violations.splice(0), [], 'every request and response matched the OpenAPI description');
});

/** A one-node stack: two web containers of 300 MB, which fit on one 1 GB droplet. */
async function smallStack(): Promise<string> {
  const repo = tempDir('quarry-griddo-');
  mkdirSync(join(repo, 'web'));
  writeFileSync(join(repo, 'web', 'Dockerfile'), 'FROM quarry/node:20\nCOPY server.js /app/server.js\n');
  writeFileSync(join(repo, 'web', 'server.js'), [
    "const http = require('node:http');",
    "http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok' : `hello from ${process.env.QUARRY_MEMBER}`)).listen(Number(process.env.PORT));",
    "process.on('SIGTERM', () => process.exit(0));",
  ].join('\n'));
  writeFileSync(join(repo, 'quarry.yml'), [
    'version: 1',
    'nodes:',
    '  web:',
    '    type: web',
    '    build: ./web',
    '    command: [node, /app/server.js]',
    '    port: 8080',
    `    domains: [${domain}]`,
    '    health: /healthz',
    '    memory: 300',
    '    scale: 2',
    '',
  ].join('\n'));
  await commitAll(repo, 'small stack', true);
  return repo;
}

test.serial('HQ makes its min of droplets through the API and runs a stack on them', async (tt) => {
  const servers = await control.servers();
  tt.is(servers.length, 1);
  tt.is(servers[0]!.provider, 'digitalocean');
  tt.regex(servers[0]!.id, /^do-\d+$/);
  const repo = await smallStack();
  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  const res = await httpGetWhenUp(`http://127.0.0.1:${router.port}/`, 20_000, { Host: domain });
  tt.regex(res.body, /^hello from [01]$/);
  tt.true((await control.ps(stack)).every((row) => row.server === servers[0]!.id));
});

test.serial('a provider error leaves grid and stack as they were, with DigitalOcean\'s own message', async (tt) => {
  const gridFile = join(t.home.root, 'grid', 'grid.json');
  const before = {
    grid: readFileSync(gridFile, 'utf8'),
    servers: await control.servers(),
    ps: (await control.ps(stack)).map((row) => `${row.container}@${row.server}:${row.state}`),
    routes: await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).strings(),
    releases: (await control.releases(stack)).length,
  };
  sim.inject({ method: 'POST', path: /^\/v2\/droplets$/, status: 422, id: 'unprocessable_entity', message: 'You specified an invalid size for Droplet creation.' });

  // Two more 300 MB containers do not fit beside two on a 1 GB droplet: the grid asks for one.
  await tt.throwsAsync(control.scale(stack, { web: 4 }, noProgress), { message: /You specified an invalid size for Droplet creation/ });

  tt.is(readFileSync(gridFile, 'utf8'), before.grid, 'grid.json is as it was');
  tt.deepEqual(await control.servers(), before.servers);
  tt.deepEqual((await control.ps(stack)).map((row) => `${row.container}@${row.server}:${row.state}`), before.ps);
  tt.deepEqual(await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).strings(), before.routes);
  tt.is((await control.releases(stack)).length, before.releases, 'no release was made');
  tt.regex((await httpGet(`http://127.0.0.1:${router.port}/`, 5000, { Host: domain })).body, /^hello from [01]$/);
});

test.serial('HQ\'s record of a droplet holds the host key handed in with its user data; after a restart the pin holds, and a record without one is pinned once', async (tt) => {
  const [server] = await control.servers();
  const id = server!.id;
  const file = join(t.home.serversDir, id, 'settings.json');
  const create = sim.requests.find((r) => r.method === 'POST' && r.path === '/v2/droplets' && r.status === 202);
  const given = (parse(String((create?.body as { user_data: string }).user_data)) as { ssh_keys: { ed25519_public: string } }).ssh_keys.ed25519_public;
  const record = JSON.parse(readFileSync(file, 'utf8')) as Server;
  tt.is(record.ssh.hostKey, hostKeyOf(given), 'the record HQ wrote when the droplet joined carries the pin');

  // HQ stops (as after kill -9, only the records remain) and its record is made one from before pinning.
  await control.close();
  writeFileSync(file, `${JSON.stringify({ ...record, ssh: { ...record.ssh, hostKey: null } }, null, 2)}\n`, { mode: 0o600 });
  const log: string[] = [];
  control = await startControl({ home: t.home, etcd: etcd.client, docker, log: (line) => log.push(line), drainMs: 300, config: controlConfig() });
  const pinnedLine = `grid: server ${id} had no pinned host key (made before quarry pinned them); pinned the one it showed now, ${hostKeyFingerprint(given)}`;
  const deadline = Date.now() + 60_000;
  while (!log.includes(pinnedLine) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  tt.true(log.includes(pinnedLine), log.join('\n'));
  tt.is((JSON.parse(readFileSync(file, 'utf8')) as Server).ssh.hostKey, hostKeyOf(given), 'pinned once, and kept in the record');
  tt.deepEqual((await control.servers()).map((s) => s.id), [id]);
  tt.true((await control.ps(stack)).every((row) => row.server === id && row.state === 'running'));
});
