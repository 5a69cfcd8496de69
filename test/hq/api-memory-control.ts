import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { HomeLayout } from '../../home/index.js';
import { startApi, type Api } from '../../hq/api/server.js';
import { BadRequestError, ReleaseNotFoundError, StackNotFoundError } from '../../hq/errors.js';
import { type GridView, type HqControl, type LogLine, type LogOptions, type PsRow, type ReleaseInfo, type ServerRow, type TopView } from '../../hq/index.js';
import { type Progress } from '../../launcher/index.js';
import { UnknownSizeError } from '../../pacific/index.js';
import { SliceGrid } from '../../slicegrid/index.js';

/** Sizes the memory control's provider knows, in MB. */
const SIZES: Record<string, number> = { 's-1vcpu-1gb': 1024, 's-2vcpu-2gb': 2048 };
/** What each unit's container reserves, in MB. */
const MEMORY: Record<string, number> = { web: 256, redis: 128, worker: 128 };

/** A server as the memory control keeps it; what it uses comes from the grid. */
type ServerRecord = Omit<ServerRow, 'memory' | 'used' | 'free' | 'containers'>;

/**
 * A small HqControl held in memory: the unit under test is the API and the command line
 * over it, not the running of stacks. Tests that use it say "memory control" in their
 * titles; the same commands against a real HQ after a real push are in
 * test/cli/real-hq.test.ts. It keeps what it was asked, so that tests can check what
 * reached it.
 */
export class MemoryControl implements HqControl {
  readonly calls: string[] = [];
  private readonly envs = new Map<string, Record<string, string>>([['demo', { DATABASE_URL: 'postgres://secret@db/demo', LOG_LEVEL: 'info' }], ['empty', {}]]);
  private readonly history = new Map<string, ReleaseInfo[]>();
  /**
   * Resolves when a followed log stream ended, with whether it ended because its caller
   * went away (the abort signal the API gives) rather than by itself.
   */
  followStopped: Promise<{ byCaller: boolean }>;
  private stopFollow!: (how: { byCaller: boolean }) => void;
  /** Followed log streams still going. */
  openFollows = 0;
  /** The grid: two servers at first (min 1, max 3), the stacks' containers on them as slicegrid places them. */
  private readonly sliceGrid = new SliceGrid({ min: 1, max: 3 });
  private readonly serverList: ServerRecord[] = [];
  private nextServer = 1;
  private readonly gridReady: Promise<void>;

  constructor() {
    this.followStopped = new Promise((resolve) => { this.stopFollow = resolve; });
    this.history.set('demo', [release('demo', 2, 'push', 'push of 2b2b2b2', { web: 2, redis: 1 }), release('demo', 1, 'push', 'push of 1a1a1a1', { web: 1, redis: 1 })]);
    this.history.set('empty', [release('empty', 1, 'push', 'push of 3c3c3c3', { worker: 1 })]);
    this.gridReady = this.fillGrid();
  }

  private async fillGrid(): Promise<void> {
    for (let i = 0; i < 2; i++) await this.sliceGrid.addBlock({ id: this.newServer('s-1vcpu-1gb', 'active').id, size: SIZES['s-1vcpu-1gb']! });
    for (const row of await this.ps()) await this.sliceGrid.add(row.container, MEMORY[row.name] ?? 128);
  }

  private newServer(size: string, state: string): ServerRecord {
    const n = this.nextServer++;
    const server = { id: `q-${n}`, provider: 'digitalocean', address: `10.0.0.${n}`, size, state, agent: true, firewall: 'on' as const, router: n === 1 };
    this.serverList.push(server);
    return server;
  }

  private row(server: ServerRecord): ServerRow {
    const block = this.sliceGrid.block(server.id);
    const memory = block?.size ?? SIZES[server.size ?? ''] ?? 0;
    return { ...server, memory, used: block?.used ?? 0, free: block?.free ?? memory, containers: block?.slices.length ?? 0 };
  }

  async stacks(): Promise<string[]> {
    return [...this.history.keys()].sort();
  }

  async ps(stack?: string): Promise<PsRow[]> {
    if (stack !== undefined) this.known(stack);
    const rows: PsRow[] = [];
    for (const [name, releases] of this.history) {
      if (stack !== undefined && name !== stack) continue;
      const last = releases[0]!;
      for (const [unit, n] of Object.entries(last.scale)) {
        for (let i = 1; i <= n; i++) {
          rows.push({
            stack: name, name: unit, kind: unit === 'redis' ? 'service' : unit === 'web' ? 'web' : 'worker',
            container: `${name}.${unit}.${i}`, server: 'local', state: 'running', health: unit === 'web' ? 'healthy' : '-',
            release: `v${last.version}`, ...(unit === 'worker' ? {} : { address: `127.0.0.1:${49150 + i}` }), restarts: 0,
          });
        }
      }
    }
    return rows;
  }

  /** A fixed snapshot: one element of two instances, fed by a node, its queue 90 % full and holding back. */
  async top(stack: string): Promise<TopView> {
    const last = this.known(stack)[0]!;
    this.calls.push(`top ${stack}`);
    const port = { kind: 'push' as const, dir: 'in' as const, rate: 50, total: 500, queued: 90, queueLimit: 100, backpressure: true };
    const instance = (replica: number) => ({
      replica, server: 'local', rate: 50, busy: 0.9, incarnation: `i${replica}`, at: '2026-01-01T00:00:00.000Z', ageMs: 500, stale: false, ports: { in: port },
    });
    return {
      stack, at: '2026-01-01T00:00:00.500Z', release: `v${last.version}`, staleAfterMs: 5000,
      elements: [{ name: 'parse', class: 'parser', scale: 2, rate: 100, busy: 0.9, stale: false, instances: [instance(1), instance(2)] }],
      connections: [{
        kind: 'push', from: { name: 'web', port: 'out' }, to: { name: 'parse', port: 'in' }, rate: 100, rateAt: 'in',
        queued: 90, queueLimit: 100, fill: 0.9, level: 'high', backpressure: true, stale: false,
      }],
    };
  }

  async scale(stack: string, changes: Record<string, number>, progress: Progress): Promise<ReleaseInfo> {
    const last = this.known(stack)[0]!;
    this.calls.push(`scale ${stack} ${JSON.stringify(changes)}`);
    for (const name of Object.keys(changes)) {
      if (name === 'crash') {
        progress.step('Scaling crash');
        throw new Error('the engine fell over');
      }
      if (!(name in last.scale)) throw new BadRequestError(`stack '${stack}' has no node or element '${name}'`);
    }
    for (const [name, n] of Object.entries(changes)) {
      progress.step(`Scaling ${name} from ${last.scale[name]} to ${n}`);
      progress.info(`started ${stack}.${name}.${n}`);
    }
    const text = Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(' ');
    return this.record(stack, 'scale', `scale ${text}`, { ...last.scale, ...changes });
  }

  async logs(stack: string, name: string | undefined, options: LogOptions, write: (line: LogLine) => void, signal: AbortSignal): Promise<void> {
    this.known(stack);
    this.calls.push(`logs ${stack} ${name ?? '*'} follow=${options.follow} tail=${options.tail ?? 'all'}`);
    const lines: LogLine[] = [
      { container: `${stack}.web.1`, stream: 'stdout', time: '2026-01-01T00:00:01.000Z', text: 'listening on 8080' },
      { container: `${stack}.redis.1`, stream: 'stderr', time: '2026-01-01T00:00:02.000Z', text: 'ready to accept connections' },
      { container: `${stack}.web.1`, stream: 'stdout', time: '2026-01-01T00:00:03.000Z', text: 'GET / 200' },
    ];
    const chosen = lines.filter((l) => name === undefined || l.container.startsWith(`${stack}.${name}.`));
    for (const line of options.tail === undefined ? chosen : chosen.slice(-options.tail)) write(line);
    if (!options.follow) return;
    write({ container: `${stack}.web.1`, stream: 'stdout', time: '2026-01-01T00:00:04.000Z', text: 'following' });
    this.openFollows++;
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.openFollows--;
    this.stopFollow({ byCaller: signal.aborted });
  }

  async releases(stack: string): Promise<ReleaseInfo[]> {
    return this.known(stack);
  }

  async rollback(stack: string, version: number, progress: Progress): Promise<ReleaseInfo> {
    const releases = this.known(stack);
    const target = releases.find((r) => r.version === version);
    if (!target) throw new ReleaseNotFoundError(stack, version);
    progress.step(`Rolling back ${stack} to v${version}`);
    return this.record(stack, 'rollback', `rollback to v${version}`, target.scale);
  }

  async env(stack: string): Promise<Record<string, string>> {
    this.known(stack);
    return { ...this.envs.get(stack) };
  }

  async setEnv(stack: string, set: Record<string, string>, unset: string[], progress: Progress): Promise<ReleaseInfo> {
    const last = this.known(stack)[0]!;
    for (const key of [...Object.keys(set), ...unset]) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new BadRequestError(`'${key}' is not an env name`);
    }
    const env = { ...this.envs.get(stack) };
    for (const key of unset) delete env[key];
    Object.assign(env, set);
    this.envs.set(stack, env);
    progress.step(`Setting env of ${stack}`);
    const said = [...Object.keys(set).map((k) => `set ${k}`), ...unset.map((k) => `unset ${k}`)].join(', ');
    return this.record(stack, 'env', `env ${said}`, last.scale);
  }

  async servers(): Promise<ServerRow[]> {
    await this.gridReady;
    return this.serverList.map((s) => this.row(s));
  }

  async grid(stack?: string): Promise<GridView> {
    await this.gridReady;
    if (stack !== undefined) this.known(stack);
    const grid = this.sliceGrid;
    return {
      drawing: grid.draw(stack === undefined ? {} : { stack }),
      servers: grid.blocks().map((b) => ({
        id: b.id, address: this.serverList.find((s) => s.id === b.id)?.address ?? '', size: b.size, used: b.used, free: b.free,
        slices: b.slices.filter((id) => stack === undefined || id.startsWith(`${stack}.`)).map((id) => ({ id, size: grid.slice(id)?.size ?? 0 })),
      })),
      autosize: grid.autosize, min: grid.min, max: grid.max === Infinity ? null : grid.max,
    };
  }

  async addServer(size: string | undefined, progress: Progress): Promise<ServerRow> {
    await this.gridReady;
    const slug = size ?? 's-1vcpu-1gb';
    this.calls.push(`addServer ${size ?? '-'}`);
    const memory = SIZES[slug];
    if (memory === undefined) throw new UnknownSizeError(`digitalocean has no size '${slug}'; sizes: ${Object.keys(SIZES).join(', ')}`);
    const server = this.newServer(slug, 'joining');
    progress.step(`Creating server ${server.id} (${slug})`);
    progress.info(`droplet ${server.id} is up at ${server.address}`);
    progress.info('waiting for its agent');
    try {
      // slicegrid's own refusal (its max) reaches the caller as it is.
      await this.sliceGrid.addBlock({ id: server.id, size: memory });
    } catch (err) {
      this.serverList.splice(this.serverList.indexOf(server), 1);
      progress.info(`destroying ${server.id}`);
      throw err;
    }
    server.state = 'active';
    progress.step(`Server ${server.id} joined the grid`);
    return this.row(server);
  }

  async drainServer(id: string, _remove: boolean, _progress: Progress): Promise<ServerRow> {
    this.calls.push(`drainServer ${id}`);
    throw new BadRequestError('the in-memory control does not drain servers');
  }

  async undrainServer(id: string, _progress: Progress): Promise<ServerRow> {
    this.calls.push(`undrainServer ${id}`);
    throw new BadRequestError('the in-memory control does not drain servers');
  }

  async removeServer(id: string, progress: Progress): Promise<ServerRow> {
    await this.gridReady;
    this.calls.push(`removeServer ${id}`);
    const server = this.serverList.find((s) => s.id === id);
    if (!server) throw new BadRequestError(`no server '${id}' in the grid; see quarry servers`);
    const before = this.row(server);
    if (before.containers > 0) {
      throw new BadRequestError(`server '${id}' still runs ${before.containers} container(s): only an empty server can be removed`);
    }
    progress.step(`Removing server ${id}`);
    await this.sliceGrid.removeBlock(id);
    this.serverList.splice(this.serverList.indexOf(server), 1);
    progress.info(`droplet ${id} destroyed`);
    return { ...before, state: 'removed', agent: false };
  }

  private known(stack: string): ReleaseInfo[] {
    const releases = this.history.get(stack);
    if (!releases) throw new StackNotFoundError(stack);
    return releases;
  }

  private record(stack: string, reason: ReleaseInfo['reason'], description: string, scale: Record<string, number>): ReleaseInfo {
    const releases = this.known(stack);
    const next = { ...release(stack, releases[0]!.version + 1, reason, description, scale), envKeys: Object.keys(this.envs.get(stack) ?? {}).sort() };
    releases.unshift(next);
    return next;
  }
}

function release(stack: string, version: number, reason: ReleaseInfo['reason'], description: string, scale: Record<string, number>): ReleaseInfo {
  return {
    stack, version, at: `2026-01-0${version}T12:00:00.000Z`, reason, description, commit: `${version}`.repeat(7) + 'abcdef0123456789abcdef0123456789a',
    images: Object.fromEntries(Object.keys(scale).map((n) => [n, `quarry/${stack}-${n}:${version}`])),
    scale, envKeys: ['DATABASE_URL', 'LOG_LEVEL'], urls: stack === 'demo' ? ['http://demo.localhost:8080/'] : [],
  };
}

/**
 * HQ's real API over a fresh MemoryControl, for one test (tests run at the same time), closed
 * when the test ends. Its home (where `POST /v1/keys` writes) is a new folder under `dir`,
 * never the commands' QUARRY_HOME; `hqEnv` points the command line at it.
 */
export async function startMemoryApi(
  t: { teardown(fn: () => Promise<void>): void }, dir: string, token: string,
): Promise<{ api: Api; control: MemoryControl; hqEnv: Record<string, string>; home: HomeLayout }> {
  const control = new MemoryControl();
  const home = new HomeLayout(mkdtempSync(join(dir, 'api-home-')));
  const api = await startApi({ control, home, token, host: '127.0.0.1', port: 0, log: () => undefined });
  t.teardown(() => api.close());
  return { api, control, hqEnv: { QUARRY_HQ: api.url, QUARRY_TOKEN: token }, home };
}
