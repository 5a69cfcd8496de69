import test from 'ava';
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { gridAdvertise } from '../../hq/grid/advertise.js';
import { HomeLayout, freePort } from '../../home/index.js';
import { etcdTls, startOwnEtcd, type OwnEtcd } from '../../hq/etcd/index.js';
import { GridCa } from '../../hq/keys/index.js';
import { startOwnRegistry, type OwnRegistry } from '../../hq/registry/index.js';
import { strangerEtcd, strangerReach, tcpReach } from '../support/probe.js';
import { until } from '../support/until.js';
import { startControl, type ControlHandle, type PsRow } from '../../hq/index.js';
import { ROUTER_MB } from '../../hq/grid/grid-cluster.js';
import { startRouter, type Router } from '../../router/index.js';
import { removeFleet, uniqueFleet, docker as dockerCli } from '../pacific/fleet.js';
import { docker } from '../support/docker.js';
import { httpGet, httpGetWhenUp } from '../support/http.js';
import { commitAll, docsearchRepo, gitEnv, must, push, removeStackImages, run, startTestHq, tempDir, uniqueStack, type TestHq } from './harness.js';

// HQ on a grid of docker-provider servers (containers with their own dockerd and sshd), for
// the whole file: the tests run in order on one stack and one grid.
const fleet = uniqueFleet('tgrid');
let etcd: { client: Etcd3; own: OwnEtcd };
let ca: GridCa;
let gateway: string;
let router: Router;
let registry: OwnRegistry;
/** The docsearch repo the first test pushes (the later ones change it). */
let docsearch: string;
let control: ControlHandle;
let t: TestHq;
const log: string[] = [];
const stack = uniqueStack('grid');
const domain = `${stack}.localhost`;
/** A second stack, a steady dataflow (test/hq/fixtures/flow). */
const flow = uniqueStack('flow');

const gridConfig = { provider: { provider: 'docker', fleet }, min: 1, max: 3, size: 's-1vcpu-1gb', advertise: undefined, locknet: true, registry: true, registryPort: 0, routers: 1 };
/** HQ's own etcd's home, TLS files and client port: the router-host test stops it and starts it again as it was. */
let etcdHome: HomeLayout;
let etcdTlsFiles: Awaited<ReturnType<typeof etcdTls>>;
let etcdPort: number;

/** HQ's control on the grid, as `quarry hq` starts it (the router-host test stops it and starts it again). */
async function startGridControl(): Promise<ControlHandle> {
  return startControl({
    home: t.home, etcd: etcd.client, docker, log: (line) => log.push(line), drainMs: 300, agentEtcd: etcd.own.extra,
    agentCa: ca, advertise: gateway, registry,
    // Old images go as soon as a newer release replaces them: the one-line change test sees them go.
    config: { routerPort: router.port, grid: gridConfig, keepReleases: 1 }, imageMinAgeMs: 0,
  });
}

/** A client port for HQ's etcd whose next port (its peer port) is free too, so that it can start again on both. */
async function etcdPortPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 65535 && (await tcpReach('127.0.0.1', port + 1, 500)) === 'refused') return port;
  }
}

test.before(async () => {
  // etcd as HQ runs it on a grid: on loopback for HQ, and on the servers' network for their
  // agents, over TLS with client certificates from the grid's CA.
  gateway = (await gridAdvertise(gridConfig, docker))!;
  etcdHome = new HomeLayout(tempDir('quarry-grid-etcd-'));
  ca = await GridCa.open(etcdHome);
  etcdTlsFiles = await etcdTls(etcdHome, ca, [gateway]);
  etcdPort = await etcdPortPair();
  const own = await startOwnEtcd({ home: etcdHome, port: etcdPort, hosts: [gateway], tls: etcdTlsFiles });
  // HQ's registry on the servers' network: every image reaches the servers by layers from it.
  registry = await startOwnRegistry({ home: etcdHome, ca, host: gateway, port: 0, log: (line) => log.push(line) });
  etcd = { own, client: new Etcd3({ hosts: own.endpoint }) };
  router = await startRouter({ port: 0, host: '127.0.0.1', etcd: etcd.client, admin: { port: 0 } });
  t = await startTestHq({ onRelease: (...args) => control.onRelease(...args) });
  control = await startGridControl();
});

test.after.always(async () => {
  // HQ's own log, for a look after a failure: QUARRY_TEST_HQ_LOG=FILE.
  if (process.env.QUARRY_TEST_HQ_LOG) writeFileSync(process.env.QUARRY_TEST_HQ_LOG, `${log.join('\n')}\n`);
  await control?.close();
  await t?.close();
  await router?.close();
  etcd?.client.close();
  await etcd?.own.stop();
  await registry?.stop();
  await removeFleet(fleet);
  await removeStackImages(stack);
  await removeStackImages(flow);
});

/** Messages of a task, as the pusher or the `quarry scale` caller sees them. */
function recorder(): { lines: string[]; progress: { step(m: string): void; info(m: string): void; error(m: string): void } } {
  const lines: string[] = [];
  return { lines, progress: { step: (m) => lines.push(`step ${m}`), info: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`) } };
}

const serverOf = (rows: PsRow[], name: string) => [...new Set(rows.filter((r) => r.name === name).map((r) => r.server))];
const fleetContainers = async () => (await dockerCli(['ps', '-q', '--filter', `label=quarry.pacific.fleet=${fleet}`])).split('\n').filter(Boolean);

test.serial('a stack that does not fit on one server spreads over several, serves through the router, and its dataflow crosses servers', async (tt) => {
  const [first] = await control.servers();
  tt.truthy(first, 'HQ made the grid\'s min of one server at start');
  tt.true(first!.agent, 'its agent holds its record in etcd');
  const record = JSON.parse((await etcd.client.get(`/quarry/servers/${first!.id}`).string())!) as { id: string; address: string };
  tt.like(record, { id: first!.id, address: first!.address });
  tt.true(log.some((l) => l.includes(`the agent of ${first!.id} holds its record in etcd`)), log.join('\n'));
  // grid.routers 1: the one server becomes the router host (a slice of the router's memory marks it).
  await until('a router host', async () => ((await control.servers()).some((s) => s.router) ? true : undefined), 120_000);
  // The example with reservations that fill more than one 1 GB server (each block is 1024 MB):
  // store 64 + index 800 + crawl 100 on one; categorize 200 + web 2 × 200 on another.
  const repo = await docsearchRepo(t.dir);
  docsearch = repo;
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8')
    .replace('docsearch.localhost', domain)
    .replace(/memory: 64\n  web:/, 'memory: 64\n  web:\n    memory: 200'));
  const topology = join(repo, 'topology.yml');
  writeFileSync(topology, readFileSync(topology, 'utf8')
    .replace('class: indexer', 'class: indexer\n    memory: 800')
    .replace('class: categorizer', 'class: categorizer\n    memory: 200')
    .replace('config: { root: corpus }', 'config: { root: corpus }\n    memory: 100'));
  await commitAll(repo, 'big reservations');

  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  tt.regex(r.stderr, /The grid is full \(.* needs \d+ MB\): adding a s-1vcpu-1gb server/);
  tt.regex(r.stderr, /pulled quarry\/\S+ into \S+: \d+ of \d+ layers fetched/, 'images reach the servers by layers from HQ\'s registry');
  tt.notRegex(r.stderr, /loading \S+ into/, 'no image is loaded whole');

  const servers = await control.servers();
  tt.is(servers.length, 2, JSON.stringify(servers));
  for (const s of servers) tt.true(s.used <= s.memory, `${s.id} holds no more than its memory`);
  tt.is(servers.filter((s) => s.router).length, 1, 'one router host (grid.routers 1)');
  tt.is(servers.reduce((sum, s) => sum + s.used, 0), 64 + 800 + 200 + 100 + 2 * 200 + ROUTER_MB, 'every container is a slice of its memory, and so is the router');

  const rows = await control.ps(stack);
  tt.is(rows.length, 6);
  const ids = new Set(servers.map((s) => s.id));
  for (const row of rows) tt.true(ids.has(row.server), `${row.container} runs on a grid server, not on HQ's engine`);
  tt.not(serverOf(rows, 'index')[0], serverOf(rows, 'categorize')[0], 'the indexer and the categorizer run on different servers');
  const local = await docker.listContainers({ filters: { label: [`quarry.stack=${stack}`] } });
  tt.is(local.length, 0, 'nothing of the stack runs on HQ\'s own engine');

  // The router reaches the web containers at their servers' addresses.
  const addresses = new Set(servers.map((s) => s.address));
  const routes = await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).strings();
  tt.is(Object.keys(routes).length, 2);
  for (const url of Object.values(routes)) tt.true(addresses.has(new URL(url).hostname), url);
  const endpoint = JSON.parse((await etcd.client.get(`/quarry/stacks/${stack}/endpoints/index/0`).string())!) as { host: string; server: string; ports: Record<string, number> };
  tt.true(addresses.has(endpoint.host) && ids.has(endpoint.server), JSON.stringify(endpoint));

  // crawl → categorize → index, and web ⇒ index, across servers: a search finds the document.
  const health = await httpGetWhenUp(`http://127.0.0.1:${router.port}/healthz`, 20_000, { Host: domain });
  tt.is(health.status, 200);
  let found: { results: Array<{ path: string }>; searches: number } | undefined;
  for (let i = 0; i < 80 && !(found && found.results.length > 0); i++) {
    const res = await httpGet(`http://127.0.0.1:${router.port}/search?q=danube`, 5000, { Host: domain });
    if (res.status === 200) found = JSON.parse(res.body);
    if (!(found && found.results.length > 0)) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  tt.deepEqual(found?.results.map((x) => x.path), ['rivers.txt'], JSON.stringify(found));
  tt.true((found?.searches ?? 0) >= 1, 'the web node counted the search in the store service on another server');

  const view = await control.grid(stack);
  tt.is(view.servers.length, 2);
  for (const s of servers) tt.true(view.drawing.includes(s.id), view.drawing);
  tt.deepEqual(view.servers.flatMap((s) => s.slices.map((x) => x.id)).sort(), rows.map((x) => x.container).sort());
  tt.true(existsSync(join(t.home.root, 'grid', 'grid.json')));
  for (const s of servers) tt.true(existsSync(join(t.home.root, 'servers', s.id, 'settings.json')), `servers/${s.id}/settings.json`);
});

/** Runs a shell command inside a docker-provider server (its own container on this machine). */
const onServerSh = (id: string, command: string) => dockerCli(['exec', `quarry-server-${id}`, 'sh', '-c', command]);
const fleetNetwork = `quarry-pacific-${fleet}`;

/** The grid's router hosts as HQ lists them, once there are `count` whose router serves the stack on port 80. */
async function servingRouterHosts(count = 1): Promise<Array<{ id: string; address: string }>> {
  return until(`${count} router host(s) serving the stack on port 80`, async () => {
    const hosts = (await control.servers()).filter((s) => s.router && s.state === 'active');
    if (hosts.length !== count) return undefined;
    for (const h of hosts) {
      const res = await httpGet(`http://${h.address}:80/`, 3000, { Host: domain }).catch(() => undefined);
      if (res?.status !== 200 || !res.body.includes('docsearch')) return undefined;
    }
    return hosts;
  }, 180_000);
}

test.serial('router hosts: the router host serves the stack on its port 80; with HQ (its control and its etcd) stopped and started again, not one request fails', async (tt) => {
  const [host] = await servingRouterHosts(1);
  const servers = await control.servers();
  tt.deepEqual(servers.filter((s) => s.router).map((s) => s.id), [host!.id], 'quarry servers says which server is the router host');
  // Its router: the agent's image on the server's network, restarted by docker always, its settings (the server's etcd key) 0600.
  tt.is(await onServerSh(host!.id, "docker inspect -f '{{.State.Running}} {{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}} {{.Config.Image}}' quarry-router"),
    'true host always quarry/agent:latest');
  tt.is(await onServerSh(host!.id, 'docker exec quarry-router stat -c %a /etc/quarry/router.json'), '600');
  for (const s of servers.filter((x) => !x.router)) tt.is(await onServerSh(s.id, 'docker ps -q --filter name=^quarry-router$'), '', `${s.id} runs no router`);
  // Its admin listener is on the server's loopback only; HQ's machine (a member) finds nothing there.
  tt.not(await tcpReach(host!.address, 9080), 'open', 'the router\'s /stats is not on the server\'s address');
  // locknet: a stranger reaches 80 and 443 of the router host (and 22), not of another server.
  const other = servers.find((s) => !s.router)!;
  tt.like(await strangerReach(fleetNetwork, [`${host!.address}:80`, `${host!.address}:22`, `${other.address}:80`]),
    { [`${host!.address}:80`]: 'open', [`${host!.address}:22`]: 'open', [`${other.address}:80`]: 'dropped' });

  // Requests to the router host's port 80 back to back, while HQ stops and starts again.
  let running = true;
  let phase: 'before' | 'stopped' | 'after' = 'before';
  const answered = { before: 0, stopped: 0, after: 0 };
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      const r = await httpGet(`http://${host!.address}:80/`, 5000, { Host: domain }).catch((err: Error) => ({ status: 0, body: err.message }));
      if (r.status === 200 && r.body.includes('docsearch')) answered[phase] += 1;
      else failed.push(`${phase} ${new Date().toISOString()} ${r.status} ${String(r.body).slice(0, 100)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await until('some answers before the stop', async () => (answered.before >= 10 ? true : undefined));
    // HQ stops as `quarry hq` does: its control, then its own etcd (the router host keeps its routes).
    await control.close();
    await etcd.own.stop();
    phase = 'stopped';
    const stoppedAt = Date.now();
    await until('six seconds of requests with HQ and its etcd stopped', async () => (Date.now() - stoppedAt >= 6000 && answered.stopped >= 10 ? true : undefined));
    tt.is(await tcpReach('127.0.0.1', etcdPort), 'refused', 'HQ\'s etcd is really down');
    etcd.own = await startOwnEtcd({ home: etcdHome, port: etcdPort, hosts: [gateway], tls: etcdTlsFiles });
    control = await startGridControl();
    phase = 'after';
    // The router follows etcd again: a route written now reaches it.
    const routes = await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).strings();
    const probe = `probe-${stack}.localhost`;
    await etcd.client.put(`/quarry/routes/${probe}/probe`).value(Object.values(routes)[0]!);
    try {
      const res = await until('a route written after the restart reaches the router host', async () => {
        const r = await httpGet(`http://${host!.address}:80/`, 3000, { Host: probe });
        return r.status === 200 ? r : undefined;
      }, 120_000);
      tt.regex(res.body, /docsearch/);
    } finally {
      await etcd.client.delete().key(`/quarry/routes/${probe}/probe`);
    }
    await until('HQ back with its router host', async () => ((await control.servers()).find((s) => s.id === host!.id)?.router ? true : undefined), 120_000);
    const back = Date.now();
    await until('a few seconds of requests after HQ is back', async () => (Date.now() - back >= 3000 ? true : undefined));
  } finally {
    running = false;
    await loop;
  }
  tt.log(`answers through ${host!.id}:80: ${answered.before} before the stop, ${answered.stopped} while HQ and its etcd were stopped, ${answered.after} after`);
  tt.deepEqual(failed, [], `requests through the router host that failed (of ${answered.before + answered.stopped + answered.after})`);
  tt.true(answered.stopped >= 10, `the app answered through the router host while HQ was stopped (${answered.stopped})`);
  tt.true(answered.after >= 10, `and after it started again (${answered.after})`);
  // HQ's embedded router still answers on HQ's routerPort, for a look from HQ's machine.
  const embedded = await httpGet(`http://127.0.0.1:${router.port}/`, 5000, { Host: domain });
  tt.is(embedded.status, 200);
  tt.regex(embedded.body, /docsearch/);
  tt.is((await control.servers()).filter((s) => s.router).length, 1, 'still one router host');
});

/** The blobs HQ's registry sent since `from` (a byte offset of its log): to whom, of which repository, how many bytes. */
function blobsSent(from: number): Array<{ ip: string; repo: string; digest: string; bytes: number }> {
  return readFileSync(registry.logPath).subarray(from).toString('utf8').split('\n').flatMap((line) => {
    if (!line.includes('"response completed"')) return [];
    const entry = JSON.parse(line) as Record<string, unknown>;
    const uri = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(String(entry['http.request.uri']));
    if (!uri || entry['http.request.method'] !== 'GET' || entry['http.response.status'] !== 200) return [];
    const ip = String(entry['http.request.remoteaddr']).replace(/:\d+$/, '');
    return [{ ip, repo: uri[1]!, digest: uri[2]!, bytes: Number(entry['http.response.written']) }];
  });
}
const logSize = () => statSync(registry.logPath).size;

test.serial('a one-line change to the web node moves only its top layer, and only to the servers that run it', async (tt) => {
  const repo = docsearch;
  const server = join(repo, 'web', 'server.js');
  writeFileSync(server, readFileSync(server, 'utf8').replace("docsearch: try /search?q=river", "docsearch v2: try /search?q=river"));
  await commitAll(repo, 'one line of the web node');
  const webImages = async () => (await dockerCli(['images', '--format', '{{.Repository}}:{{.Tag}}', `quarry/${stack}-web`])).split('\n').filter(Boolean);
  const [oldWeb] = await webImages();
  const before = logSize();
  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  const page = await until('the new web node serving', async () => {
    const res = await httpGet(`http://127.0.0.1:${router.port}/`, 5000, { Host: domain });
    return res.body.includes('docsearch v2') ? res.body : undefined;
  });
  tt.regex(page, /docsearch v2/);

  const sent = blobsSent(before);
  const servers = await control.servers();
  const webServers = new Set(serverOf(await control.ps(stack), 'web').map((id) => servers.find((s) => s.id === id)!.address));
  tt.true(sent.length > 0, 'the new image was pulled');
  for (const blob of sent) {
    tt.true(webServers.has(blob.ip), `${blob.ip} fetched ${blob.digest} but runs no web container`);
    tt.regex(blob.repo, new RegExp(`^quarry/${stack}-web$`), 'only the web image moved');
  }
  for (const ip of webServers) {
    const bytes = sent.filter((b) => b.ip === ip).reduce((sum, b) => sum + b.bytes, 0);
    tt.true(bytes <= 1024 * 1024, `${ip} fetched ${bytes} bytes for a one-line change (at most 1 MB)`);
    tt.true(sent.filter((b) => b.ip === ip).length <= 2, `${ip} fetched its top layer and the image's config, nothing below`);
  }
  tt.log(`a one-line change moved ${sent.map((b) => `${b.bytes} B to ${b.ip}`).join(', ')}`);

  // keepReleases 1: the old web image leaves HQ's engine, the servers and the registry (its blobs collected).
  tt.truthy(oldWeb);
  const said = await until('a collection that removed something from the registry', async () =>
    log.find((l) => /^images: [1-9]\d* old image\(s\) removed here, \d+ on the servers, [1-9]\d* from the registry \(\d+ blob\(s\) deleted\)/.test(l)));
  tt.log(said);
  const now = await webImages();
  tt.is(now.length, 1);
  tt.not(now[0], oldWeb, 'only the new web image is here');
  const listed = JSON.parse((await registry.api('GET', `/v2/quarry/${stack}-web/tags/list`)).body) as { tags?: string[] | null };
  tt.deepEqual(listed.tags, [now[0]!.split(':')[1]], 'the registry holds only the new tag');
  for (const s of await control.servers()) {
    const there = await onServerSh(s.id, `docker images --format '{{.Repository}}:{{.Tag}}' quarry/${stack}-web`);
    tt.false(there.split('\n').includes(oldWeb!), `${s.id} no longer holds ${oldWeb}`);
  }
});

/** The IPv4 members in force on a server, read from the kernel through its agent's ipset. */
const membersOn = async (id: string) => (await onServerSh(id, 'docker exec quarry-agent /usr/sbin/ipset list quarry-members4'))
  .split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l.trim())).map((l) => l.trim()).sort();
/** The server's filter rules, without the packet counters that change as traffic flows. */
const rulesOn = async (id: string) => (await onServerSh(id, 'iptables-save -t filter; ip6tables-save -t filter'))
  .split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')).join('\n');

/** Where the stack's store service and the index element's control socket are published. */
async function doors(): Promise<{ store: string; control: string; server: string }> {
  const env = await etcd.client.getAll().prefix(`/quarry/stacks/${stack}/env/`).strings();
  const store = `${env[`/quarry/stacks/${stack}/env/STORE_HOST`]}:${env[`/quarry/stacks/${stack}/env/STORE_PORT`]}`;
  const index = (await control.ps(stack)).find((r) => r.name === 'index')!;
  const published = (await onServerSh(index.server, `docker port ${index.container} 7000/tcp`)).split('\n')[0]!;
  const server = (await control.servers()).find((x) => x.id === index.server)!;
  return { store, control: `${server.address}:${published.slice(published.lastIndexOf(':') + 1)}`, server: server.address };
}

test.serial('locknet: a stranger on the servers\' network reaches port 22 of a server and nothing else, nor anything in etcd; members reach it all', async (tt) => {
  const servers = await until('every firewall on', async () => {
    const rows = await control.servers();
    return rows.every((r) => r.firewall === 'on') ? rows : undefined;
  });
  tt.is(servers.length, 2);
  const { store, control: controlSocket, server } = await doors();
  const stranger = await strangerReach(fleetNetwork, [`${server}:22`, store, controlSocket]);
  tt.deepEqual(stranger, { [`${server}:22`]: 'open', [store]: 'dropped', [controlSocket]: 'dropped' },
    'SSH is public; a service\'s published port and an element\'s control socket are not');

  // Members: HQ's host (this process, at the network's gateway) and the other server.
  const [storeHost, storePort] = [store.slice(0, store.lastIndexOf(':')), Number(store.slice(store.lastIndexOf(':') + 1))];
  tt.is(await tcpReach(storeHost, storePort), 'open', 'HQ reaches the store');
  tt.is(await tcpReach(server, Number(controlSocket.split(':')[1])), 'open', 'HQ reaches the control socket');
  const other = servers.find((x) => x.address !== storeHost)!;
  const fromOther = await onServerSh(other.id, `timeout 3 bash -c '</dev/tcp/${storeHost}/${storePort}' && echo open || echo closed`);
  tt.is(fromOther, 'open', `${other.id} (a member) reaches the store on another server`);

  // etcd on the servers' network: plain gRPC finds nothing listening that way, TLS without
  // a client certificate from the grid's CA is turned away.
  const asked = await strangerEtcd(fleetNetwork, etcd.own.extra[0]!, ca.cert);
  tt.regex(asked.plain, /^error/, JSON.stringify(asked));
  tt.regex(asked.tls, /^error/, JSON.stringify(asked));
  tt.true(etcd.own.extra[0]!.startsWith('https://'));
  // … while every agent, with its certificate, holds its record there.
  for (const s of servers) tt.truthy(await etcd.client.get(`/quarry/servers/${s.id}`).string(), `${s.id}'s agent reached etcd over TLS`);

  // /etc/hosts on every server lists every server (and HQ), the server's own lines kept.
  const members = JSON.stringify(await etcd.client.getAll().prefix('/quarry/network/hosts/').strings());
  for (const s of servers) {
    const hosts = await until(`/etc/hosts on ${s.id}`, async () => {
      const text = await onServerSh(s.id, 'cat /etc/hosts');
      return servers.every((x) => text.includes(`${x.address} ${x.id}`)) && text.includes(`${gateway} hq`) ? text : undefined;
    });
    tt.regex(hosts, /localhost/, 'the lines docker wrote are kept');
    tt.deepEqual(await membersOn(s.id), [gateway, ...servers.map((x) => x.address)].sort(), members);
  }
});

test.serial('locknet: the rules stay in force while the agent is dead (fail closed) and are the same after it starts again', async (tt) => {
  const { store, server } = await doors();
  const id = (await control.servers()).find((x) => x.address === server)!.id;
  const before = await rulesOn(id);
  tt.regex(before, /QUARRY-INPUT/);
  tt.is(await onServerSh(id, 'docker inspect -f "{{.HostConfig.NetworkMode}} {{.HostConfig.CapAdd}} {{.HostConfig.Privileged}}" quarry-agent'), 'host [NET_ADMIN] false',
    'the agent has the server\'s network and NET_ADMIN, and no more');
  await onServerSh(id, 'docker update --restart=no quarry-agent >/dev/null && docker kill -s KILL quarry-agent >/dev/null');
  tt.teardown(() => onServerSh(id, 'docker update --restart=always quarry-agent >/dev/null; docker start quarry-agent >/dev/null').then(() => undefined, () => undefined));
  tt.is((await onServerSh(id, 'docker inspect -f {{.State.Running}} quarry-agent')), 'false');
  tt.is(await rulesOn(id), before, 'nothing changed when the agent died');
  tt.deepEqual(await strangerReach(fleetNetwork, [store]), { [store]: 'dropped' }, 'still closed to strangers');
  await onServerSh(id, 'docker update --restart=always quarry-agent >/dev/null && docker start quarry-agent >/dev/null');
  await until('the agent back', async () => ((await control.servers()).find((x) => x.id === id)?.firewall === 'on' ? true : undefined));
  tt.is(await rulesOn(id), before, 'the same rules after it started again');
});

test.serial('a web container whose process is killed comes back on the same host ports: the routes stay right and the site serves', async (tt) => {
  const webs = (await control.ps(stack)).filter((r) => r.name === 'web');
  tt.is(webs.length, 2);
  const routesBefore = await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).strings();
  for (const web of webs) {
    await onServerSh(web.server, `kill -9 $(docker inspect -f '{{.State.Pid}}' ${web.container})`);
  }
  for (const web of webs) {
    // Its server's caretaker (the agent) restarted the same container, and says so in etcd.
    const care = await until(`${web.container} restarted by its caretaker`, async () => {
      const text = await etcd.client.get(`/quarry/stacks/${stack}/care/${web.container}`).string();
      const record = text ? JSON.parse(text) as { restarts: number; state: string; lastExit?: { code: number } } : undefined;
      return record && record.restarts >= 1 && record.state === 'running' ? record : undefined;
    });
    tt.is(care.lastExit?.code, 137, 'killed by SIGKILL');
    tt.is(await onServerSh(web.server, `docker inspect -f '{{.State.Running}}' ${web.container}`), 'true', 'the same container runs again');
    const row = (await control.ps(stack)).find((r) => r.container === web.container);
    tt.is(row?.restarts, 1, 'quarry ps counts the restart');
    tt.is(row?.lastExit?.code, 137);
  }
  tt.deepEqual(await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).strings(), routesBefore, 'the routes did not have to change');
  for (const url of Object.values(routesBefore)) {
    const res = await until(`${url} answers`, async () => {
      const r = await httpGet(`${url}/healthz`, 2000);
      return r.status === 200 ? r : undefined;
    });
    tt.is(res.status, 200, `${url}: the restarted container listens where its route says`);
  }
  const res = await until('a search through the router', async () => {
    const r = await httpGet(`http://127.0.0.1:${router.port}/search?q=danube`, 5000, { Host: domain });
    return r.status === 200 ? r : undefined;
  });
  tt.regex(res.body, /rivers\.txt/);
});

test.serial('scaling beyond the grid makes a new server; scaling down removes the emptied one; the site serves throughout', async (tt) => {
  const before = await control.servers();
  const up = recorder();
  const logAt = logSize();
  const scaled = await control.scale(stack, { web: 5 }, up.progress);
  tt.is(scaled.scale.web, 5);
  tt.true(up.lines.some((l) => /The grid is full .* adding a s-1vcpu-1gb server/.test(l)), up.lines.join('\n'));
  const grown = await control.servers();
  tt.is(grown.length, 3);
  const added = grown.find((s) => !before.some((b) => b.id === s.id))!;
  tt.true(added.containers > 0, 'the new server runs some of the new web containers');
  tt.true(added.agent, 'the new server joined with its agent');
  // A server that joins later pulls the base layers once: each blob it fetched, it fetched once,
  // and the web image on top of the agent's layers cost it only the layers the agent lacks.
  const fetched = blobsSent(logAt).filter((b) => b.ip === added.address);
  const digests = fetched.map((b) => b.digest);
  tt.deepEqual(digests.filter((d, i) => digests.indexOf(d) !== i), [], `${added.id} fetched a blob twice`);
  tt.true(fetched.some((b) => b.repo === 'quarry/agent'), 'the base layers came with the agent');
  tt.log(`${added.id} fetched ${fetched.length} blobs, ${(fetched.reduce((n, b) => n + b.bytes, 0) / 1048576).toFixed(1)} MB: ` +
    `${fetched.filter((b) => b.repo === 'quarry/agent').length} with the agent, ${fetched.filter((b) => b.repo !== 'quarry/agent').length} for the web image`);
  tt.true(up.lines.some((l) => new RegExp(`pulled quarry/${stack}-web:\\S+ into ${added.id}: \\d+ of \\d+ layers fetched`).test(l)), up.lines.join('\n'));
  // Let in by every other server's firewall, and its own lets them in.
  const { store } = await doors();
  const joined = Date.now();
  for (const s of before) await until(`${added.id} a member on ${s.id}`, async () => ((await membersOn(s.id)).includes(added.address) ? true : undefined));
  tt.log(`${added.id} was a member of every other server's firewall ${Date.now() - joined} ms after its join ended`);
  const [storeHost, storePort] = [store.slice(0, store.lastIndexOf(':')), store.slice(store.lastIndexOf(':') + 1)];
  tt.is(await onServerSh(added.id, `timeout 3 bash -c '</dev/tcp/${storeHost}/${storePort}' && echo open || echo closed`), 'open', 'the new server reaches the store');
  tt.truthy(await etcd.client.get(`/quarry/servers/${added.id}`).string());
  tt.is(Object.keys(await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).keys()).length, 5);
  tt.is((await httpGet(`http://127.0.0.1:${router.port}/healthz`, 5000, { Host: domain })).status, 200);
  tt.is((await fleetContainers()).length, 3);

  const down = recorder();
  await control.scale(stack, { web: 2 }, down.progress);
  tt.true(down.lines.some((l) => l.includes(`Server ${added.id} is empty: removing it`)), down.lines.join('\n'));
  const shrunk = await control.servers();
  tt.deepEqual(shrunk.map((s) => s.id).sort(), before.map((s) => s.id).sort());
  tt.false(existsSync(join(t.home.root, 'servers', added.id)), 'its record is gone');
  tt.is(await etcd.client.get(`/quarry/servers/${added.id}`).string(), null, 'and so is its record in etcd');
  tt.is(await etcd.client.get(`/quarry/network/hosts/${added.id}`).string(), null, 'and its membership');
  for (const s of shrunk) {
    await until(`${added.id} shut out on ${s.id}`, async () => ((await membersOn(s.id)).includes(added.address) ? undefined : true));
  }
  tt.is((await fleetContainers()).length, 2, 'the provider removed the server itself');
  tt.is((await httpGet(`http://127.0.0.1:${router.port}/healthz`, 5000, { Host: domain })).status, 200);
});

test.serial('a server that runs containers is not removed by hand; an empty grid keeps its min', async (tt) => {
  const servers = await control.servers();
  const busy = servers.find((s) => s.containers > 0)!;
  const r = recorder();
  await tt.throwsAsync(control.removeServer(busy.id, r.progress), { message: new RegExp(`server ${busy.id} runs \\d+ containers?`) });
  await tt.throwsAsync(control.removeServer('nope', r.progress), { message: /no server 'nope'/ });
  tt.is((await control.servers()).length, servers.length);
});

test.serial('a service started anew on a grid has a new address, and the units that read it start again with it', async (tt) => {
  const repo = join(t.dir, 'replace-repo');
  await must(run('git', ['clone', '-q', t.home.repo(stack), repo]));
  const storeJs = join(repo, 'store', 'server.js');
  writeFileSync(storeJs, `${readFileSync(storeJs, 'utf8')}\n// changed\n`);
  await commitAll(repo, 'store changed');
  const storeBefore = await etcd.client.get(`/quarry/stacks/${stack}/env/STORE_PORT`).string();
  const replaced = await run('git', ['push', '--porcelain', '-o', 'replace=store', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${stack}`, 'main'], { cwd: repo, env: gitEnv(t.key, t.hq.sshPort) });
  tt.is(replaced.code, 0, replaced.stderr);
  tt.regex(replaced.stderr, /Starting service store/);
  tt.regex(replaced.stderr, /STORE_(HOST|PORT).* changed: web starts again to read it/);
  const storeAfter = await etcd.client.get(`/quarry/stacks/${stack}/env/STORE_PORT`).string();
  tt.truthy(storeAfter);
  tt.not(`${storeAfter}`, `${storeBefore}`, 'the new store is published on a new port');
  // The web node counts searches in the new store: it reached it at its new address.
  const res = await httpGet(`http://127.0.0.1:${router.port}/search?q=danube`, 5000, { Host: domain });
  tt.is(res.status, 200, res.body);
  tt.true((JSON.parse(res.body) as { searches: number }).searches >= 1, res.body);
});

/** The care record of a container (its caretaker's restarts and last exit), or undefined. */
async function careOf(ofStack: string, container: string): Promise<{ restarts: number; state: string; lastExit?: { code: number }; reason?: string } | undefined> {
  const text = await etcd.client.get(`/quarry/stacks/${ofStack}/care/${container}`).string();
  return text ? JSON.parse(text) : undefined;
}

/** What the flow stack's sink printed last: how many distinct ids it has, and how many logs in all. */
async function sinkCount(flow: string): Promise<{ unique: number; total: number } | undefined> {
  const lines: string[] = [];
  await control.logs(flow, 'sink', { follow: false }, (line) => lines.push(line.text), new AbortController().signal);
  const last = lines.map((l) => /sink: unique=(\d+) total=(\d+)/.exec(l)).filter(Boolean).at(-1);
  return last ? { unique: Number(last[1]), total: Number(last[2]) } : undefined;
}

test.serial('an element killed mid-stream is restarted by its caretaker and no log is lost; a worker that keeps crashing ends failed, not restarted for ever', async (tt) => {
  const repo = join(t.dir, `flow-${flow}`);
  cpSync(join(import.meta.dirname, 'fixtures', 'flow'), repo, { recursive: true });
  await commitAll(repo, 'flow', true);
  const pushed = await push(t, repo, flow);
  tt.is(pushed.code, 0, pushed.stderr);
  try {
    await until('the sink has some', async () => ((await sinkCount(flow))?.unique ?? 0) >= 300 ? true : undefined, 60_000);
    const pass = (await control.ps(flow)).find((r) => r.name === 'pass')!;
    await onServerSh(pass.server, `kill -9 $(docker inspect -f '{{.State.Pid}}' ${pass.container})`);
    const care = await until(`${pass.container} restarted`, async () => {
      const record = await careOf(flow, pass.container);
      return record && record.restarts >= 1 && record.state === 'running' ? record : undefined;
    });
    tt.is(care.lastExit?.code, 137);
    const done = await until('every id at the sink', async () => {
      const count = await sinkCount(flow);
      return count && count.unique >= 3000 ? count : undefined;
    }, 120_000);
    tt.is(done.unique, 3000, 'every one of the 3000 ids reached the sink across the kill');
    tt.true(done.total >= 3000, `${done.total} logs in all (a redelivered batch counts again)`);

    // The worker exits with 3 each time: restarted twice (attempts 2), then failed and left.
    const flaky = (await control.ps(flow)).find((r) => r.name === 'flaky')!;
    const failed = await until(`${flaky.container} failed`, async () => {
      const record = await careOf(flow, flaky.container);
      return record?.state === 'failed' ? record : undefined;
    }, 60_000);
    tt.is(failed.restarts, 2);
    tt.regex(failed.reason ?? '', /3 times within 1 min/);
    const row = (await control.ps(flow)).find((r) => r.container === flaky.container);
    tt.like(row, { state: 'failed', restarts: 2, lastExit: { code: 3 } });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    tt.is(await onServerSh(flaky.server, `docker inspect -f '{{.State.Running}}' ${flaky.container}`), 'false', 'it stays stopped');
    tt.is((await careOf(flow, flaky.container))?.restarts, 2, 'and is not restarted again');
  } finally {
    // Nothing of it for the tests after this one to move.
    await control.scale(flow, { counter: 0, pass: 0, sink: 0, flaky: 0 }, recorder().progress).catch(() => undefined);
  }
});

/** Asks the router for `path` every `everyMs` until stopped: how many answers were not 200, and what they were. */
function requestLoop(path: string, everyMs = 50): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const loop = (async () => {
    while (running) {
      const r = await httpGet(`http://127.0.0.1:${router.port}${path}`, 5000, { Host: domain }).catch((err: Error) => ({ status: 0, body: err.message }));
      if (r.status === 200) ok += 1;
      else failed.push(`${new Date().toISOString()} ${r.status} ${String(r.body).slice(0, 100)}`);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return { async stop() { running = false; await loop; return { ok, failed }; } };
}

test.serial('drain: every container of a server starts elsewhere (the grid grows to make room), healthy and routed before the old one stops; no request fails; --remove then removes it', async (tt) => {
  const before = await control.servers();
  const rows = await control.ps(stack);
  const [drained] = serverOf(rows, 'web');
  const moving = rows.filter((r) => r.server === drained).map((r) => r.container);
  tt.true(moving.length > 0);
  const loop = requestLoop('/healthz');
  const r = recorder();
  const row = await control.drainServer(drained!, true, r.progress);
  const { ok, failed } = await loop.stop();
  tt.is(row.state, 'removed', r.lines.join('\n'));
  tt.deepEqual(failed, [], `${ok} requests answered 200 while ${drained} drained; these did not:\n${failed.join('\n')}\n${r.lines.join('\n')}`);
  tt.true(ok > 10, `the loop ran throughout (${ok} answers)`);
  tt.true(r.lines.some((l) => l.includes(`Moving web off ${drained}`)), r.lines.join('\n'));
  const after = await control.ps(stack);
  tt.is(after.length, rows.length, 'every member runs again');
  tt.false(after.some((x) => x.server === drained), 'nothing is listed on the drained server');
  for (const x of after) tt.is(x.state, 'running', `${x.container} runs`);
  const servers = await control.servers();
  tt.false(servers.some((s) => s.id === drained), `${drained} was removed`);
  tt.true(servers.some((s) => !before.some((b) => b.id === s.id)), 'a server was added to take what did not fit');
  tt.is(await etcd.client.get(`/quarry/network/hosts/${drained}`).string(), null, 'it left the membership');
  tt.false((await fleetContainers()).length > servers.length, 'the provider removed it');
  const routes = await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).strings();
  const addresses = new Set(servers.map((s) => s.address));
  for (const url of Object.values(routes)) tt.true(addresses.has(new URL(url).hostname), `${url} names a server that is still there`);
});

test.serial('a server that dies: HQ finds it lost, its containers start on the others, the stack serves again, and ps and servers answer throughout', async (tt) => {
  const rows = await control.ps(stack);
  const [victim] = serverOf(rows, 'web');
  const lostOnes = rows.filter((r) => r.server === victim);
  tt.true(lostOnes.length > 0);
  const killedAt = Date.now();
  await dockerCli(['kill', `quarry-server-${victim}`]);
  // While it does not answer (before HQ calls it lost), ps and servers answer and say so.
  const psNow = await control.ps(stack);
  const onVictim = psNow.filter((x) => x.server === victim);
  tt.true(onVictim.length > 0 && onVictim.every((x) => x.state === 'unreachable'), JSON.stringify(onVictim));
  tt.is((await control.servers()).find((s) => s.id === victim)?.state, 'unreachable');
  // A deploy meanwhile goes on without it.
  const scaled = recorder();
  const release = await control.scale(stack, { web: 3 }, scaled.progress);
  tt.is(release.scale.web, 3, scaled.lines.join('\n'));
  tt.false((await control.ps(stack)).some((x) => x.server === victim && x.state === 'running'), 'nothing new was started on it');
  const expected = rows.length + 1;
  const looks: string[] = [];
  const failures: string[] = [];
  const served = await until(`the stack serves again without ${victim}`, check, 120_000).catch((err: Error) => {
    tt.log(`looks:\n${looks.slice(-15).join('\n')}\nHQ's heal log:\n${log.filter((l) => l.startsWith('heal') || l.includes(victim!)).join('\n')}`);
    throw err;
  });
  async function check(): Promise<number | undefined> {
    let ps: PsRow[];
    let servers: Awaited<ReturnType<typeof control.servers>>;
    try {
      [ps, servers] = await Promise.all([control.ps(stack), control.servers()]);
    } catch (err) {
      failures.push(`${Date.now() - killedAt} ms: ${(err as Error).message}`);
      return undefined;
    }
    looks.push(`${Date.now() - killedAt} ms: ${servers.map((s) => `${s.id}=${s.state}`).join(' ')}; ${ps.filter((x) => x.server === victim).length} on ${victim}; ${ps.map((x) => `${x.container}@${x.server}=${x.state}`).join(' ')}`);
    if (ps.some((x) => x.server === victim) || servers.some((s) => s.id === victim)) return undefined;
    if (ps.length !== expected || ps.some((x) => x.state !== 'running')) return undefined;
    const res = await httpGet(`http://127.0.0.1:${router.port}/healthz`, 3000, { Host: domain });
    looks.push(`  router: ${res.status}`);
    return res.status === 200 ? Date.now() - killedAt : undefined;
  }
  await until(`HQ done with ${victim}`, async () => (log.some((l) => l.includes(`server ${victim} replaced in`) || l.includes(`server ${victim} removed;`)) ? true : undefined), 120_000);
  tt.log(`serving again ${served} ms after the server was killed; the last looks:\n${looks.slice(-4).join('\n')}`);
  tt.deepEqual(failures, [], 'ps and servers never failed while the server was unreachable');
  tt.true(log.some((l) => l.includes(`server ${victim} is lost`)), log.filter((l) => l.startsWith('heal')).join('\n'));
  tt.is(await etcd.client.get(`/quarry/network/hosts/${victim}`).string(), null, 'the lost server left the membership');
  tt.false(existsSync(join(t.home.root, 'servers', victim!)), 'its record is gone');
  const endpoints = await etcd.client.getAll().prefix(`/quarry/stacks/${stack}/endpoints/`).strings();
  for (const value of Object.values(endpoints)) tt.not((JSON.parse(value) as { server: string }).server, victim, value);
});

test.serial('a lost router host is replaced like any lost server: another server becomes the router host and serves the stack on its port 80', async (tt) => {
  const [host] = await servingRouterHosts(1);
  await dockerCli(['kill', `quarry-server-${host!.id}`]);
  const killedAt = Date.now();
  const seen = new Map<string, number>();
  const note = (what: string) => { if (!seen.has(what)) seen.set(what, Date.now() - killedAt); };
  const next = await until(`another router host in place of ${host!.id}`, async () => {
    if (log.some((l) => l.includes(`server ${host!.id} is lost`))) note(`HQ found ${host!.id} lost`);
    const listed = (await control.servers()).filter((s) => s.router && s.id !== host!.id && s.state === 'active');
    if (listed.length !== 1) return undefined;
    note(`${listed[0]!.id} listed as the router host`);
    const res = await httpGet(`http://${listed[0]!.address}:80/`, 3000, { Host: domain }).catch(() => undefined);
    return res?.status === 200 && res.body.includes('docsearch') ? listed[0] : undefined;
  }, 240_000).catch((err: Error) => {
    tt.log(`HQ's log:\n${log.filter((l) => l.startsWith('heal') || l.includes(host!.id)).slice(-40).join('\n')}`);
    throw err;
  });
  tt.log(`${next.id} serves the stack as the router host ${Date.now() - killedAt} ms after ${host!.id} was killed; ` +
    `${[...seen].map(([what, ms]) => `${what} after ${ms} ms`).join(', ')}`);
  tt.true(log.some((l) => l.includes(`server ${host!.id} is lost`)), 'HQ found it lost');
  tt.true(log.some((l) => l.includes(`${next.id} becomes a router host`)), log.filter((l) => l.startsWith('heal')).join('\n'));
  tt.deepEqual(await strangerReach(fleetNetwork, [`${next.address}:80`]), { [`${next.address}:80`]: 'open' }, 'its port 80 is public now');
  await until(`HQ done with ${host!.id}`, async () => (log.some((l) => l.includes(`server ${host!.id} replaced in`) || l.includes(`server ${host!.id} removed;`)) ? true : undefined), 240_000);
  const servers = await control.servers();
  tt.false(servers.some((s) => s.id === host!.id), `${host!.id} left the grid`);
  tt.deepEqual(servers.filter((s) => s.router).map((s) => s.id), [next.id], 'one router host, as grid.routers says');
});
