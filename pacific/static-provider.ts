import { ConfigInvalidError } from '../config/index.js';
import { NoCapacityError, UnknownServerError, UnsupportedOperationError } from './errors.js';
import { FleetProvider } from './provider.js';
import type { QuarryKey, StaticSettings } from './settings.js';
import { sizeFromLimits } from './sizes.js';
import { connectSsh, execSsh, waitForServer } from './ssh.js';
import type { Server, SizeRequest, StaticServer } from './types.js';

/** One machine of the settings' list. */
export interface StaticMachine {
  url: string;
  host: string;
  port: number;
  user: string;
  id: string;
}

/** Reads `ssh://user@host:port` (user default root, port default 22); throws naming `servers.N`. */
export function parseSshUrl(text: string, source: string, key: string): StaticMachine {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigInvalidError(source, key, `must be ssh://user@host:port, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'ssh:' || url.hostname === '' || url.password !== '' || (url.pathname !== '' && url.pathname !== '/')) {
    throw new ConfigInvalidError(source, key, `must be ssh://user@host:port, got ${JSON.stringify(text)}`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? 22 : Number(url.port);
  const user = url.username === '' ? 'root' : decodeURIComponent(url.username);
  return { url: text, host, port, user, id: `static-${host.replace(/[^a-zA-Z0-9]+/g, '-')}-${port}` };
}

/**
 * Machines the user already has, listed in the settings. `add` makes the next machine not
 * yet in the fleet join it (once its sshd and docker engine answer the quarry key), `remove`
 * makes it leave (the machine is not touched), and `resize` is refused: quarry does not own
 * the machine. The size of a machine is what it measures (memory and cpus), not what `add`
 * asked for.
 */
export class StaticProvider extends FleetProvider {
  readonly name = 'static' as const;
  readonly machines: readonly StaticMachine[];
  private readonly joined = new Map<string, StaticServer>();

  constructor(private readonly settings: StaticSettings, private readonly key: QuarryKey, source: string, known: readonly Server[] = []) {
    super();
    this.machines = settings.servers.map((text, index) => parseSshUrl(text, source, `servers.${index}`));
    const seen = new Set<string>();
    this.machines.forEach((machine, index) => {
      if (seen.has(machine.id)) throw new ConfigInvalidError(source, `servers.${index}`, `${machine.url} is listed twice`);
      seen.add(machine.id);
    });
    // The records HQ kept say which machines had joined before a restart.
    for (const server of known) {
      if (server.provider === 'static' && seen.has(server.id)) this.joined.set(server.id, server);
    }
  }

  protected unknown(id: string): Error {
    return new UnknownServerError('static', id);
  }

  protected async create(_size: SizeRequest): Promise<StaticServer> {
    const machine = this.machines.find((candidate) => !this.joined.has(candidate.id));
    if (!machine) {
      throw new NoCapacityError(`static provider: all ${this.machines.length} machines in settings.servers have joined; add another ssh:// address there to grow the fleet`);
    }
    this.progress(machine.id, `${machine.url} joins the fleet`);
    const target = { host: machine.host, port: machine.port, user: machine.user, privateKey: this.key.privateKey, hostKey: null };
    const answered = await waitForServer(target, {
      server: machine.id, timeoutMs: this.settings.bootTimeoutMs, progress: (message) => this.progress(machine.id, message),
    });
    const size = await this.measure({ ...target, hostKey: answered.hostKey });
    const server: StaticServer = {
      id: machine.id,
      provider: 'static',
      name: machine.host,
      address: machine.host,
      ssh: { host: machine.host, port: machine.port, user: machine.user, hostKey: answered.hostKey },
      size,
      state: 'active',
      createdAt: new Date().toISOString(),
      static: { url: machine.url },
    };
    this.joined.set(server.id, server);
    return server;
  }

  protected async destroy(server: StaticServer): Promise<void> {
    this.progress(server.id, `${server.static.url} leaves the fleet (the machine itself is left as it is)`);
    this.joined.delete(server.id);
  }

  protected async change(server: StaticServer, _size: SizeRequest): Promise<StaticServer> {
    throw new UnsupportedOperationError(`static provider: server ${server.id} (${server.static.url}) cannot be resized by quarry: it is a machine you manage. Resize it yourself, then remove it and add it again so that quarry measures its new size`);
  }

  async list(): Promise<StaticServer[]> {
    return [...this.joined.values()];
  }

  /** The machine's memory (MB) and cpus, as it reports them. */
  private async measure(target: Parameters<typeof connectSsh>[0]) {
    const { client } = await connectSsh(target);
    try {
      const result = await execSsh(client, "nproc; awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo");
      const [cpus, memory] = result.stdout.trim().split('\n').map(Number);
      // No slug: the machine is what it is, not one of the sizes quarry can order.
      return { ...sizeFromLimits(memory ?? 0, cpus ?? 1), slug: null };
    } finally {
      client.end();
    }
  }
}
