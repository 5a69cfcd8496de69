import test from 'ava';
import { parse } from 'yaml';
import {
  createProvider, DigitalOceanApiError, UnknownServerError,
  type DigitalOceanServer, type Progress, type ServerSize,
} from '../../pacific/index.js';
import { DigitalOceanSimulator } from './do-simulator.js';
import { docker, onServer, quarryKey, removeFleet, uniqueFleet } from './fleet.js';

// Contract tests of the DigitalOcean driver against the simulator, which checks every request
// and response against DigitalOcean's OpenAPI description. One real droplet (a docker-provider
// server) for the whole file; the tests run in order and share it.
const key = quarryKey();
const serversFleet = uniqueFleet('tdosim');
const fleet = uniqueFleet('tdo');
const sim = new DigitalOceanSimulator(serversFleet);
const progress: Progress[] = [];
let settings: Record<string, unknown>;
let provider: ReturnType<typeof createProvider>;
let droplet: DigitalOceanServer | undefined;

test.before(async () => {
  await sim.start();
  settings = {
    provider: 'digitalocean', token: sim.token, baseUrl: sim.baseUrl, fleet, privateKey: key.privateKey,
    sshKeys: ['289794', '3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45'], tags: ['env:test'],
    pollIntervalMs: 100, bootTimeoutMs: 150_000, agentConfig: 'https://hq.example.com/agent.json',
  };
  provider = createProvider(settings, { onProgress: (p) => progress.push(p) });
});
test.after.always(async () => {
  await sim.close();
  await removeFleet(serversFleet);
});
test.afterEach.always((t) => {
  t.deepEqual(sim.violations.splice(0), [], 'every request and response matched the OpenAPI description');
});

const requests = (method: string, path: RegExp) => sim.requests.filter((r) => r.method === method && path.test(r.path));

test.serial('add creates a droplet with ssh_keys, tags and a cloud-init user_data, and resolves once it answers over SSH', async (t) => {
  const added: string[] = [];
  provider.on('added', (server) => { added.push(server.id); });
  droplet = (await provider.add('s-1vcpu-512mb-10gb')) as DigitalOceanServer;

  const [create] = requests('POST', /^\/v2\/droplets$/);
  const body = create?.body as Record<string, unknown>;
  t.deepEqual(body.ssh_keys, [289794, '3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45']);
  t.deepEqual(body.tags, ['quarry', `quarry-fleet:${fleet}`, 'env:test']);
  t.like(body, { size: 's-1vcpu-512mb-10gb', region: 'nyc3', image: 'debian-12-x64' });
  const userData = String(body.user_data);
  t.true(userData.startsWith('#cloud-config\n'));
  const config = parse(userData) as { packages: string[]; write_files: Array<{ path: string; content: string }>; runcmd: unknown[] };
  t.true(config.packages.includes('docker.io'));
  t.is(config.write_files.find((f) => f.path === '/root/.ssh/authorized_keys')?.content.trim(), key.publicKey.trim().split(' ').slice(0, 2).join(' ') + ' quarry');
  t.regex(config.write_files.find((f) => f.path.endsWith('quarry-agent.service'))?.content ?? '', /ExecStart=.*quarry\/agent:latest agent --config https:\/\/hq\.example\.com\/agent\.json/);
  t.true(requests('GET', /^\/v2\/actions\/\d+$/).length >= 1, 'the create action was polled');

  t.like(droplet, { provider: 'digitalocean', state: 'active', size: { slug: 's-1vcpu-512mb-10gb', memory: 512, cpus: 1 } });
  t.is(droplet.id, `do-${droplet.digitalocean.dropletId}`);
  t.regex(droplet.address, /^172\.|^10\.|^192\.168\./, 'the address of the real server behind the droplet');
  t.deepEqual(added, [droplet.id]);
  // The key reached the server only through user_data: SSH with it, and docker answers there.
  const answer = await onServer(droplet, key.privateKey, "docker info --format '{{.ServerVersion}}'");
  t.is(answer.code, 0, answer.stderr);
  t.false(JSON.stringify(progress).includes(sim.token), 'the token never shows');
});

test.serial('list follows links.pages.next over several pages and keeps to the fleet tag', async (t) => {
  sim.seed(5, ['quarry', `quarry-fleet:${fleet}`]);
  sim.seed(2, ['quarry', 'quarry-fleet:another']);
  const paged = createProvider({ ...settings, perPage: 2 });
  const before = sim.requests.length;
  const listed = await paged.list();
  t.is(listed.length, 6);
  t.true(listed.some((s) => s.id === droplet?.id));
  const pages = sim.requests.slice(before).filter((r) => r.method === 'GET' && r.path === '/v2/droplets').map((r) => new URLSearchParams(r.query).get('page'));
  t.deepEqual(pages, [null, '2', '3']);
});

test.serial('resize powers off, resizes and powers on, polling each action, and the server answers at its new size', async (t) => {
  if (!droplet) return t.fail('no droplet');
  const seen: Array<[string | null, ServerSize]> = [];
  provider.on('resized', (server, before) => { seen.push([server.size.slug, before]); });
  const before = sim.requests.length;
  const after = await provider.resize(droplet.id, 's-1vcpu-1gb');
  const calls = sim.requests.slice(before).filter((r) => r.path.includes('/actions'));
  const posts = calls.filter((r) => r.method === 'POST').map((r) => (r.body as { type: string }).type);
  t.deepEqual(posts, ['power_off', 'resize', 'power_on']);
  // Each POST is followed by GETs of its action until it completed, before the next POST.
  const order = calls.map((r) => (r.method === 'POST' ? (r.body as { type: string }).type : 'poll'));
  t.deepEqual(order.filter((step, i) => step !== 'poll' || order[i - 1] !== 'poll'), ['power_off', 'poll', 'resize', 'poll', 'power_on', 'poll']);
  t.like(after.size, { slug: 's-1vcpu-1gb', memory: 1024 });
  t.deepEqual(seen, [['s-1vcpu-1gb', droplet.size]]);
  const server = sim.servers && (await sim.servers.list())[0];
  t.is(await docker(['inspect', '-f', '{{.HostConfig.Memory}}', (server as { docker: { container: string } }).docker.container]), String(1024 * 1024 * 1024));
  const answer = await onServer(after, key.privateKey, 'docker info --format "{{.ServerVersion}}"');
  t.is(answer.code, 0, 'it came back after power_on');
  droplet = after as DigitalOceanServer;
});

test.serial('a 429 is retried after retry-after, and a used-up rate limit waits for its reset', async (t) => {
  sim.inject({ method: 'GET', path: /^\/v2\/droplets$/, status: 429, id: 'too_many_requests', message: 'API rate limit exceeded.', retryAfter: 1 });
  const before = sim.requests.length;
  const listed = await provider.list();
  t.is(listed.length, 6);
  const [refused, retried] = sim.requests.slice(before);
  t.is(refused?.status, 429);
  t.is(retried?.status, 200);
  t.true((retried?.at ?? 0) - (refused?.at ?? 0) >= 1000, 'the retry waited for retry-after');
  t.true(progress.some((p) => /429 .*retrying in 1 s/.test(p.message)));

  const reset = Math.ceil(Date.now() / 1000) + 2;
  sim.rateLimit(1, reset);
  await provider.get(droplet?.id ?? '');
  const next = sim.requests.length;
  await provider.get(droplet?.id ?? '');
  t.true((sim.requests[next]?.at ?? 0) >= reset * 1000, 'the request after ratelimit-remaining 0 waited for ratelimit-reset');
  t.true(progress.some((p) => /rate limit is used up/.test(p.message)));
});

test.serial('an API error reaches the caller with DigitalOcean\'s message and id, and the fleet is as it was', async (t) => {
  const before = (await provider.list()).map((s) => s.id).sort();
  sim.inject({ method: 'POST', path: /^\/v2\/droplets$/, status: 422, id: 'unprocessable_entity', message: 'You specified an invalid image for Droplet creation.' });
  const error = await t.throwsAsync(provider.add('s-1vcpu-1gb'), { instanceOf: DigitalOceanApiError });
  t.is(error?.id, 'unprocessable_entity');
  t.is(error?.status, 422);
  t.is(error?.apiMessage, 'You specified an invalid image for Droplet creation.');
  t.regex(error?.message ?? '', /DigitalOcean refused POST \/v2\/droplets \(HTTP 422, unprocessable_entity\): You specified an invalid image/);
  t.false(error?.message.includes(sim.token));
  t.deepEqual((await provider.list()).map((s) => s.id).sort(), before);

  // A resize whose resize step fails: the droplet is powered on again at its old size.
  if (!droplet) return t.fail('no droplet');
  sim.inject({ method: 'POST', path: /\/actions$/, when: (b) => (b as { type?: string }).type === 'resize', status: 500, id: 'server_error', message: 'Server was unable to give you a response.' });
  await t.throwsAsync(provider.resize(droplet.id, 's-2vcpu-2gb'), { instanceOf: DigitalOceanApiError, message: /Server was unable to give you a response/ });
  const still = await provider.get(droplet.id);
  t.like(still, { state: 'active', size: { slug: 's-1vcpu-1gb' } });
  t.deepEqual((await provider.list()).map((s) => s.id).sort(), before);

  const stranger = createProvider({ ...settings, token: 'dop_v1_wrong' });
  await t.throwsAsync(stranger.list(), { instanceOf: DigitalOceanApiError, message: /HTTP 401, unauthorized\): Unable to authenticate you/ });
});

test.serial('remove deletes the droplet and its server', async (t) => {
  if (!droplet) return t.fail('no droplet');
  await t.throwsAsync(provider.remove('do-1'), { instanceOf: UnknownServerError });
  await provider.remove(droplet.id);
  t.false((await provider.list()).some((s) => s.id === droplet?.id));
  t.deepEqual(await sim.servers.list(), [], 'the server behind it is gone');
  t.is(requests('DELETE', /^\/v2\/droplets\/\d+$/).at(-1)?.status, 204);
});
