import { execFile, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { connectSsh, createProvider, HostKeyMismatchError, type DockerServer, type Provider } from '../../pacific/index.js';
import { DOCKER, quarryKey } from './fleet.js';
import { Operation } from './openapi.js';

const run = promisify(execFile);

/**
 * A local DigitalOcean API v2 for the endpoints pacific's driver uses. Every request it
 * gets and every response it gives is checked against DigitalOcean's OpenAPI description;
 * a mismatch is recorded in `violations` (a test fails on any) and a bad request is refused
 * with 422, as the real API would. Its droplets are real docker-provider servers: a create
 * makes a container with its own sshd and dockerd, the keys in `user_data` are put into its
 * root's authorized_keys and its host keys (`ssh_keys`, `ssh_deletekeys`, `ssh_genkeytypes`)
 * into its sshd the way cloud-init would, before the droplet shows an address; and
 * power_off / resize / power_on stop, `docker update` and start it.
 *
 * This is test code (test/pacific/), not product: it exists to hold the driver to the
 * contract, and only the endpoints the driver calls are here.
 */

const OPERATIONS = {
  create: new Operation('resources/droplets/droplets_create.yml'),
  list: new Operation('resources/droplets/droplets_list.yml'),
  get: new Operation('resources/droplets/droplets_get.yml'),
  destroy: new Operation('resources/droplets/droplets_destroy.yml'),
  act: new Operation('resources/droplets/dropletActions_post.yml'),
  action: new Operation('resources/actions/actions_get.yml'),
};

interface Route { method: string; pattern: RegExp; operation: Operation; params: string[] }
const ROUTES: Route[] = [
  { method: 'POST', pattern: /^\/v2\/droplets$/, operation: OPERATIONS.create, params: [] },
  { method: 'GET', pattern: /^\/v2\/droplets$/, operation: OPERATIONS.list, params: [] },
  { method: 'GET', pattern: /^\/v2\/droplets\/([^/]+)$/, operation: OPERATIONS.get, params: ['droplet_id'] },
  { method: 'DELETE', pattern: /^\/v2\/droplets\/([^/]+)$/, operation: OPERATIONS.destroy, params: ['droplet_id'] },
  { method: 'POST', pattern: /^\/v2\/droplets\/([^/]+)\/actions$/, operation: OPERATIONS.act, params: ['droplet_id'] },
  { method: 'GET', pattern: /^\/v2\/actions\/([^/]+)$/, operation: OPERATIONS.action, params: ['action_id'] },
];

/** A droplet as DigitalOcean's example shows one; the simulator changes what it must. */
const TEMPLATE = OPERATIONS.create.example('202', 'Single Droplet Create Response') as { droplet: Record<string, unknown> };

export interface Injection {
  method?: string;
  path?: RegExp;
  status: number;
  id: string;
  message: string;
  /** Seconds, for a 429's `retry-after`. */
  retryAfter?: number;
  /** Only requests whose JSON body passes this. */
  when?: (body: unknown) => boolean;
  /** How many matching requests it answers; default 1. */
  times?: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  query: string;
  body: unknown;
  at: number;
  status: number;
  operation: string | null;
}

interface SimAction { id: number; status: 'in-progress' | 'completed' | 'errored'; type: string; resource_id: number; started_at: string; completed_at: string | null }
interface SimDroplet { record: Record<string, unknown> & { id: number; tags: string[]; status: string }; server: DockerServer | null }

const SIZES: Record<string, { memory: number; vcpus: number; disk: number }> = {
  's-1vcpu-512mb-10gb': { memory: 512, vcpus: 1, disk: 10 },
  's-1vcpu-1gb': { memory: 1024, vcpus: 1, disk: 25 },
  's-1vcpu-2gb': { memory: 2048, vcpus: 1, disk: 50 },
  's-2vcpu-2gb': { memory: 2048, vcpus: 2, disk: 60 },
  's-2vcpu-4gb': { memory: 4096, vcpus: 2, disk: 80 },
};

export class DigitalOceanSimulator {
  readonly token = `dop_v1_${Math.random().toString(36).slice(2)}`;
  readonly violations: string[] = [];
  readonly requests: SeenRequest[] = [];
  private readonly http: HttpServer;
  private readonly droplets = new Map<number, SimDroplet>();
  private readonly actions = new Map<number, SimAction>();
  private readonly injections: Array<Injection & { left: number }> = [];
  private readonly pending = new Set<Promise<unknown>>();
  private nextId = 3164444;
  private nextActionId = 7515;
  private remaining = 5000;
  private resetAt = Math.ceil(Date.now() / 1000) + 3600;
  /** The provider that makes the droplets' servers. */
  readonly servers: Provider;
  baseUrl = '';
  /** The simulator's own key (not the driver's): the docker provider and the host key checks log in with it. */
  private readonly ownKey = quarryKey();
  /** Whether the next droplet made keeps host keys of its own instead of the user data's. */
  private ignoreNextHostKey = false;
  /** `docker logs` of the servers of deleted droplets, by droplet id (sshd logs every login there). */
  private readonly removedLogs = new Map<number, string>();

  constructor(readonly fleet: string) {
    // The simulator's own key lets the docker provider see the server up; the driver's key
    // reaches the server only through user_data, as on DigitalOcean.
    this.servers = createProvider({ provider: 'docker', fleet, privateKey: this.ownKey.privateKey, bootTimeoutMs: 150_000 });
    this.http = createServer((req, res) => { void this.handle(req, res); });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
    return this.baseUrl;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** The next matching requests get this error instead of an answer. */
  inject(injection: Injection): void {
    this.injections.push({ ...injection, left: injection.times ?? 1 });
  }

  /** From the next response on, this many requests are left until `resetAt` (epoch seconds). */
  rateLimit(remaining: number, resetAt: number): void {
    this.remaining = remaining;
    this.resetAt = resetAt;
  }

  /** Droplets made elsewhere (no server behind them), for listings. Returns their ids. */
  seed(count: number, tags: string[]): number[] {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.nextId++;
      const droplet = this.dropletRecord(id, `seeded-${id}`, 's-1vcpu-1gb', tags, 'debian-12-x64', 'nyc3');
      droplet.status = 'active';
      // TEST-NET-3 (RFC 5737): never routed, never contacted.
      droplet.networks = { v4: [{ ip_address: `203.0.113.${(i % 250) + 1}`, netmask: '255.255.255.0', gateway: '203.0.113.254', type: 'public' }], v6: [] };
      this.droplets.set(id, { record: droplet, server: null });
      ids.push(id);
    }
    return ids;
  }

  dropletIds(): number[] {
    return [...this.droplets.keys()];
  }

  /**
   * The next droplet made ignores the host key its user data hands in and keeps keys of its
   * own, as a server someone else answers for would: the driver must refuse it.
   */
  ignoreHostKeyOfNextDroplet(): void {
    this.ignoreNextHostKey = true;
  }

  /** Gives a droplet's sshd a new ed25519 host key (as a rebuilt or impostor server); returns its public line. */
  async replaceHostKey(dropletId: number): Promise<string> {
    const server = this.serverOf(dropletId);
    const script = [
      'set -e',
      'rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub',
      "ssh-keygen -q -t ed25519 -N '' -C replaced -f /etc/ssh/ssh_host_ed25519_key",
    ].join('; ');
    await run(DOCKER, ['exec', server.docker.container, 'sh', '-c', script]);
    const publicKey = (await run(DOCKER, ['exec', server.docker.container, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).stdout.trim();
    await this.reloadSshd(server, publicKey);
    return publicKey;
  }

  /** Everything the droplet's server logged (its sshd logs each login), also after the droplet was deleted. */
  async serverLog(dropletId: number): Promise<string> {
    const removed = this.removedLogs.get(dropletId);
    if (removed !== undefined) return removed;
    const { stdout, stderr } = await run(DOCKER, ['logs', this.serverOf(dropletId).docker.container], { maxBuffer: 16 * 1024 * 1024 });
    return `${stdout}${stderr}`;
  }

  /** Runs a command in the droplet's server (as root, by docker exec: no SSH). */
  async inServer(dropletId: number, command: string): Promise<string> {
    return (await run(DOCKER, ['exec', this.serverOf(dropletId).docker.container, 'sh', '-c', command])).stdout;
  }

  private serverOf(dropletId: number): DockerServer {
    const server = this.droplets.get(dropletId)?.server;
    if (!server) throw new Error(`simulator: droplet ${dropletId} has no server`);
    return server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: unknown;
    const seen: SeenRequest = { method: req.method ?? '', path: url.pathname, query: url.search, body: undefined, at: Date.now(), status: 0, operation: null };
    this.requests.push(seen);
    const send = (status: number, payload?: unknown, extra: Record<string, string> = {}) => {
      seen.status = status;
      if (Date.now() / 1000 >= this.resetAt) this.rateLimit(5000, Math.ceil(Date.now() / 1000) + 3600);
      if (this.remaining > 0) this.remaining -= 1;
      const headers: Record<string, string> = {
        'content-type': 'application/json; charset=utf-8',
        'ratelimit-limit': '5000',
        'ratelimit-remaining': String(this.remaining),
        'ratelimit-reset': String(this.resetAt),
        ...extra,
      };
      if (route) {
        const found = route.operation.checkResponse(status, headers, payload);
        this.violations.push(...found.map((p) => `${seen.method} ${seen.path} → ${status}: ${p}`));
      }
      res.writeHead(status, headers);
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const route = ROUTES.find((r) => r.method === req.method && r.pattern.test(url.pathname));
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        this.violations.push(`${seen.method} ${seen.path}: the request body is not JSON`);
        return send(400, { id: 'bad_request', message: 'request body is not JSON' });
      }
    }
    seen.body = body;
    if (!route) {
      this.violations.push(`${seen.method} ${seen.path}: no such endpoint in the simulator (is it one the driver should call?)`);
      res.writeHead(404).end();
      return;
    }
    seen.operation = route.operation.id;
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return send(401, { id: 'unauthorized', message: 'Unable to authenticate you' });
    }
    const params: Record<string, string> = {};
    const match = route.pattern.exec(url.pathname);
    route.params.forEach((name, i) => { params[name] = decodeURIComponent(match?.[i + 1] ?? ''); });
    const wrong = route.operation.checkRequest({ path: params, query: url.searchParams, body, contentType: req.headers['content-type'] });
    if (wrong.length > 0) {
      this.violations.push(...wrong.map((p) => `${seen.method} ${seen.path}: ${p}`));
      return send(422, { id: 'unprocessable_entity', message: wrong.join('; ') });
    }
    const injected = this.injections.find((i) => i.left > 0 && (!i.method || i.method === req.method) && (!i.path || i.path.test(url.pathname)) && (!i.when || i.when(body)));
    if (injected) {
      injected.left -= 1;
      const extra: Record<string, string> = injected.retryAfter === undefined ? {} : { 'retry-after': String(injected.retryAfter) };
      return send(injected.status, { id: injected.id, message: injected.message, request_id: '4d9d8375-3c56-4925-a3e7-eb137fed17e9' }, extra);
    }
    try {
      const [status, payload] = await this.answer(route.operation.id, params, url, body);
      send(status, payload);
    } catch (error) {
      send(500, { id: 'server_error', message: `simulator: ${(error as Error).message}` });
    }
  }

  private async answer(operation: string, params: Record<string, string>, url: URL, body: unknown): Promise<[number, unknown?]> {
    const notFound: [number, unknown] = [404, { id: 'not_found', message: 'The resource you were accessing could not be found.' }];
    const droplet = params.droplet_id === undefined ? undefined : this.droplets.get(Number(params.droplet_id));
    switch (operation) {
      case 'droplets_create': return this.create(body as Record<string, unknown>);
      case 'droplets_list': return this.list(url);
      case 'droplets_get': return droplet ? [200, { droplet: droplet.record }] : notFound;
      case 'droplets_destroy': {
        if (!droplet) return notFound;
        this.droplets.delete(droplet.record.id);
        if (droplet.server) {
          const logs = await run(DOCKER, ['logs', droplet.server.docker.container], { maxBuffer: 16 * 1024 * 1024 }).catch(() => ({ stdout: '', stderr: '' }));
          this.removedLogs.set(droplet.record.id, `${logs.stdout}${logs.stderr}`);
          await this.servers.remove(droplet.server.id);
        }
        return [204];
      }
      case 'dropletActions_post': return droplet ? this.act(droplet, body as { type: string; size?: string }) : notFound;
      case 'actions_get': {
        const action = this.actions.get(Number(params.action_id));
        return action ? [200, { action: this.actionRecord(action) }] : notFound;
      }
    }
    throw new Error(`no handler for ${operation}`);
  }

  private create(body: Record<string, unknown>): [number, unknown] {
    const slug = String(body.size);
    if (!SIZES[slug]) return [422, { id: 'unprocessable_entity', message: `You specified an invalid size for Droplet creation.` }];
    const id = this.nextId++;
    const record = this.dropletRecord(id, String(body.name), slug, (body.tags as string[] | undefined) ?? [], String(body.image), String(body.region ?? 'nyc3'));
    const droplet: SimDroplet = { record, server: null };
    this.droplets.set(id, droplet);
    const ignoreHostKey = this.ignoreNextHostKey;
    this.ignoreNextHostKey = false;
    const action = this.startAction('create', id, async () => {
      const server = (await this.servers.add(slug)) as DockerServer;
      droplet.server = server;
      await this.installKeys(server, String(body.user_data ?? ''), ignoreHostKey);
      record.status = 'active';
      record.networks = { v4: [{ ip_address: server.address, netmask: '255.255.0.0', gateway: server.address.replace(/\.\d+$/, '.1'), type: 'public' }], v6: [] };
    });
    return [202, { droplet: record, links: { actions: [{ id: action.id, rel: 'create', href: `${this.baseUrl}/v2/actions/${action.id}` }] } }];
  }

  /**
   * What cloud-init would do with the driver's user_data: the keys it writes for root, and the
   * host keys of its SSH module (cc_ssh): with `ssh_keys`, the image's keys go first unless
   * `ssh_deletekeys: false`, each `<type>_private` / `<type>_public` becomes
   * /etc/ssh/ssh_host_<type>_key(.pub), and `ssh_genkeytypes` (default rsa, ecdsa, ed25519)
   * are made when missing. sshd then reloads them (SIGHUP; it is the container's first
   * process) and the droplet gets its address only once sshd shows the given key.
   */
  private async installKeys(server: DockerServer, userData: string, ignoreHostKey: boolean): Promise<void> {
    const config = parse(userData.replace(/^#cloud-config\n/, '')) as {
      write_files?: Array<{ path: string; content: string }>;
      ssh_keys?: Record<string, string>;
      ssh_deletekeys?: boolean;
      ssh_genkeytypes?: string[];
    } | null;
    const keys = config?.write_files?.find((f) => f.path === '/root/.ssh/authorized_keys')?.content ?? '';
    if (keys.trim() !== '') {
      await run(DOCKER, ['exec', server.docker.container, 'sh', '-c', 'printf "%s\\n" "$1" >>/root/.ssh/authorized_keys', 'sh', keys.trim()]);
    }
    const hostKeys = config?.ssh_keys;
    if (!hostKeys || ignoreHostKey) return;
    const types = ['rsa', 'ecdsa', 'ed25519'].filter((type) => typeof hostKeys[`${type}_private`] === 'string');
    if (config.ssh_deletekeys !== false) await run(DOCKER, ['exec', server.docker.container, 'sh', '-c', 'rm -f /etc/ssh/ssh_host_*']);
    for (const type of types) {
      const file = `/etc/ssh/ssh_host_${type}_key`;
      // The private key goes in through standard input, never a process argument.
      await execInput(server.docker.container, `umask 077; cat > ${file}`, hostKeys[`${type}_private`]!);
      await execInput(server.docker.container, `umask 022; cat > ${file}.pub`, `${(hostKeys[`${type}_public`] ?? '').trim()}\n`);
    }
    for (const type of config.ssh_genkeytypes ?? ['rsa', 'ecdsa', 'ed25519']) {
      const file = `/etc/ssh/ssh_host_${type}_key`;
      await run(DOCKER, ['exec', server.docker.container, 'sh', '-c', `test -f ${file} || ssh-keygen -q -t ${type} -N '' -f ${file}`]);
    }
    const shown = hostKeys.ed25519_public ?? hostKeys.ecdsa_public ?? hostKeys.rsa_public;
    if (shown) await this.reloadSshd(server, shown.trim());
  }

  /** SIGHUP to sshd (it re-executes itself and reads its host keys again); resolves once it shows `publicKey`. */
  private async reloadSshd(server: DockerServer, publicKey: string): Promise<void> {
    await run(DOCKER, ['exec', server.docker.container, 'kill', '-HUP', '1']);
    const deadline = Date.now() + 60_000;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const { client } = await connectSsh({ host: server.address, port: 22, user: 'root', privateKey: this.ownKey.privateKey, hostKey: publicKey });
        client.end();
        return;
      } catch (error) {
        last = error instanceof HostKeyMismatchError ? `it still shows ${error.shown}` : (error as Error).message;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    throw new Error(`the sshd of ${server.id} did not show its new host key within 60 s (${last})`);
  }

  private list(url: URL): [number, unknown] {
    const tag = url.searchParams.get('tag_name');
    const perPage = Number(url.searchParams.get('per_page') ?? 20);
    const page = Number(url.searchParams.get('page') ?? 1);
    const all = [...this.droplets.values()].map((d) => d.record).filter((r) => tag === null || r.tags.includes(tag));
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const link = (n: number) => {
      const next = new URL(url.href);
      next.searchParams.set('page', String(n));
      return next.href;
    };
    const pages: Record<string, string> = {};
    if (page > 1) Object.assign(pages, { first: link(1), prev: link(page - 1) });
    if (page < last) Object.assign(pages, { next: link(page + 1), last: link(last) });
    return [200, { droplets: all.slice((page - 1) * perPage, page * perPage), links: { pages }, meta: { total: all.length } }];
  }

  private act(droplet: SimDroplet, body: { type: string; size?: string }): [number, unknown] {
    const container = droplet.server?.docker.container;
    const record = droplet.record;
    if (!container) return [422, { id: 'unprocessable_entity', message: 'This Droplet has no server in the simulator.' }];
    switch (body.type) {
      case 'power_off': {
        const action = this.startAction('power_off', record.id, async () => {
          await run(DOCKER, ['stop', '-t', '5', container]);
          record.status = 'off';
        });
        return [201, { action: this.actionRecord(action) }];
      }
      case 'power_on': {
        const action = this.startAction('power_on', record.id, async () => {
          await run(DOCKER, ['start', container]);
          const address = (await run(DOCKER, ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container])).stdout.trim();
          record.status = 'active';
          record.networks = { v4: [{ ip_address: address, netmask: '255.255.0.0', gateway: address.replace(/\.\d+$/, '.1'), type: 'public' }], v6: [] };
        });
        return [201, { action: this.actionRecord(action) }];
      }
      case 'resize': {
        if (record.status !== 'off') return [422, { id: 'unprocessable_entity', message: 'Droplet is currently on. Please power it off to run this event.' }];
        const size = body.size === undefined ? undefined : SIZES[body.size];
        if (!size || !body.size) return [422, { id: 'unprocessable_entity', message: 'You specified an invalid size for Droplet resize.' }];
        const slug = body.size;
        const action = this.startAction('resize', record.id, async () => {
          const bytes = String(size.memory * 1024 * 1024);
          await run(DOCKER, ['update', '--memory', bytes, '--memory-swap', bytes, '--cpu-shares', String(size.vcpus * 1024), container]);
          Object.assign(record, { size_slug: slug, memory: size.memory, vcpus: size.vcpus, disk: size.disk, size: { ...(TEMPLATE.droplet.size as object), slug, ...size } });
        });
        return [201, { action: this.actionRecord(action) }];
      }
      default:
        return [422, { id: 'unprocessable_entity', message: `The simulator does not do ${body.type}.` }];
    }
  }

  private startAction(type: string, resource: number, work: () => Promise<void>): SimAction {
    const action: SimAction = { id: this.nextActionId++, status: 'in-progress', type, resource_id: resource, started_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), completed_at: null };
    this.actions.set(action.id, action);
    const done = work().then(
      () => { action.status = 'completed'; },
      (error: unknown) => {
        action.status = 'errored';
        this.violations.push(`(not a contract fault) the simulator's ${type} of droplet ${resource} failed: ${(error as Error).message}`);
      },
    ).finally(() => {
      action.completed_at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      this.pending.delete(done);
    });
    this.pending.add(done);
    return action;
  }

  private actionRecord(action: SimAction): Record<string, unknown> {
    const region = TEMPLATE.droplet.region as Record<string, unknown>;
    return { ...action, resource_type: 'droplet', region, region_slug: region.slug };
  }

  private dropletRecord(id: number, name: string, slug: string, tags: string[], image: string, region: string): SimDroplet['record'] {
    const size = SIZES[slug] ?? { memory: 1024, vcpus: 1, disk: 25 };
    return {
      ...structuredClone(TEMPLATE.droplet),
      id,
      name,
      ...size,
      status: 'new',
      created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      features: [],
      image: { ...(TEMPLATE.droplet.image as object), slug: image, name: image },
      size: { ...(TEMPLATE.droplet.size as object), slug, ...size },
      size_slug: slug,
      networks: { v4: [], v6: [] },
      region: { ...(TEMPLATE.droplet.region as object), slug: region },
      tags: [...tags],
    };
  }
}

/** `docker exec -i CONTAINER sh -c SCRIPT` with `input` on its standard input. */
function execInput(container: string, script: string, input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER, ['exec', '-i', container, 'sh', '-c', script], { stdio: ['pipe', 'ignore', 'pipe'] });
    let said = '';
    child.stderr.on('data', (chunk: Buffer) => { said += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker exec ${script} exited ${code}: ${said.trim()}`))));
    child.stdin.end(input);
  });
}
