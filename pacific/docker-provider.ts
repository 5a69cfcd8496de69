import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { PacificError, UnknownServerError } from './errors.js';
import { FleetProvider, messageOf } from './provider.js';
import type { DockerSettings, QuarryKey } from './settings.js';
import { resolveSize, sizeFromLimits } from './sizes.js';
import { waitForServer } from './ssh.js';
import type { DockerServer, ServerSize, SizeRequest } from './types.js';

const FLEET_LABEL = 'quarry.pacific.fleet';
const SERVER_LABEL = 'quarry.pacific.server';
const MB = 1024 * 1024;
// Docker's default CPU weight is 1024; a server gets 1024 per vcpu, a share under contention.
const SHARES_PER_CPU = 1024;

/**
 * The server's first process: host keys of its own (the image has none), the quarry key,
 * its own docker engine in the background, and sshd in the foreground. It runs again when
 * the container restarts (a power cycle). The key comes in an
 * environment variable so that no file has to be copied in before start.
 */
const BOOT = [
  'set -e',
  'ssh-keygen -A >/dev/null',
  'mkdir -p /run/sshd /root/.ssh',
  'chmod 700 /root/.ssh',
  // Appended once: a server that restarts keeps keys it was given since.
  'grep -qxF "$QUARRY_AUTHORIZED_KEY" /root/.ssh/authorized_keys 2>/dev/null || printf "%s\\n" "$QUARRY_AUTHORIZED_KEY" >>/root/.ssh/authorized_keys',
  'chmod 600 /root/.ssh/authorized_keys',
  '(dockerd >/var/log/dockerd.log 2>&1 &)',
  'exec /usr/sbin/sshd -D -e',
].join('; ');

/**
 * Servers as containers on a docker engine, like kind: each runs its own dockerd and sshd
 * and has its own address on the fleet's network. The flags are the ones RUNBOOK.md found to
 * work without --privileged.
 */
export class DockerProvider extends FleetProvider {
  readonly name = 'docker' as const;
  readonly network: string;
  private readonly docker: Docker;
  /** Host keys seen at boot, by server id (docker keeps no place for them on the container). */
  private readonly hostKeys = new Map<string, string>();

  constructor(private readonly settings: DockerSettings, private readonly key: QuarryKey) {
    super();
    this.docker = new Docker({ socketPath: settings.socket });
    this.network = settings.network ?? `quarry-pacific-${settings.fleet}`;
  }

  protected unknown(id: string): Error {
    return new UnknownServerError('docker', id);
  }

  protected async create(request: SizeRequest): Promise<DockerServer> {
    const size = resolveSize(request);
    const id = `${this.settings.fleet}-${randomBytes(3).toString('hex')}`;
    const container = `quarry-server-${id}`;
    const volume = `${container}-docker`;
    await this.ensureNetwork();
    this.progress(id, `making server ${id} (${size.slug ?? ''} ${size.memory} MB) as container ${container}`);
    try {
      const made = await this.docker.createContainer({
        name: container,
        Hostname: id,
        Image: this.settings.image,
        Cmd: ['sh', '-c', BOOT],
        Env: [`QUARRY_AUTHORIZED_KEY=${this.key.publicKey}`],
        Labels: { [FLEET_LABEL]: this.settings.fleet, [SERVER_LABEL]: id },
        HostConfig: {
          CapAdd: ['ALL'],
          CapDrop: ['SYS_RESOURCE'],
          SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
          CgroupnsMode: 'host',
          Binds: ['/sys/fs/cgroup:/sys/fs/cgroup:rw', `${volume}:/var/lib/docker`],
          Tmpfs: { '/run': '' },
          NetworkMode: this.network,
          Memory: size.memory * MB,
          MemorySwap: size.memory * MB,
          CpuShares: size.cpus * SHARES_PER_CPU,
        } as Docker.HostConfig,
      });
      await made.start();
    } catch (error) {
      await this.removeParts(container, volume);
      throw this.engineError(`cannot start server ${id}`, error);
    }
    let server = await this.inspect(container);
    if (!server) throw new PacificError(`server ${id}: container ${container} vanished right after it started`);
    this.progress(id, `container ${container} runs at ${server.address}`);
    try {
      const answered = await waitForServer(
        { host: server.address, port: 22, user: 'root', privateKey: this.key.privateKey, hostKey: null },
        { server: id, timeoutMs: this.settings.bootTimeoutMs, progress: (message) => this.progress(id, message) },
      );
      this.hostKeys.set(id, answered.hostKey);
    } catch (error) {
      const log = await this.dockerdLog(container);
      await this.removeParts(container, volume);
      throw log === '' ? error : new PacificError(`${messageOf(error)}\nthe server's dockerd log ended with:\n${log}`, { cause: error });
    }
    server = { ...server, ssh: { ...server.ssh, hostKey: this.hostKeys.get(id) ?? null } };
    return server;
  }

  protected async destroy(server: DockerServer): Promise<void> {
    this.progress(server.id, `removing container ${server.docker.container} and volume ${server.docker.volume}`);
    await this.removeParts(server.docker.container, server.docker.volume);
    this.hostKeys.delete(server.id);
  }

  protected async change(server: DockerServer, request: SizeRequest): Promise<DockerServer> {
    const size = resolveSize(request);
    this.progress(server.id, `resizing ${server.id} to ${size.slug ?? ''} ${size.memory} MB`);
    try {
      // Swap as large as memory means none: a server that runs out of memory is out of it.
      await this.docker.getContainer(server.docker.container).update({
        Memory: size.memory * MB,
        MemorySwap: size.memory * MB,
        CpuShares: size.cpus * SHARES_PER_CPU,
      });
    } catch (error) {
      throw this.engineError(`cannot resize server ${server.id} to ${size.memory} MB (is more than that in use on it?)`, error);
    }
    await waitForServer(
      { host: server.address, port: server.ssh.port, user: server.ssh.user, privateKey: this.key.privateKey, hostKey: server.ssh.hostKey },
      { server: server.id, timeoutMs: this.settings.bootTimeoutMs, progress: (message) => this.progress(server.id, message) },
    );
    const after = await this.inspect(server.docker.container);
    if (!after) throw new UnknownServerError('docker', server.id);
    return after;
  }

  async list(): Promise<DockerServer[]> {
    const found = await this.docker.listContainers({ all: true, filters: { label: [`${FLEET_LABEL}=${this.settings.fleet}`] } });
    const servers = await Promise.all(found.map((entry) => this.inspect(entry.Id)));
    return servers.filter((server): server is DockerServer => server !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Removes the fleet's network when no server is left on it (tests and `quarry servers` clean-up). */
  async removeNetwork(): Promise<void> {
    this.networkReady = undefined;
    try {
      await this.docker.getNetwork(this.network).remove();
    } catch (error) {
      if (statusOf(error) !== 404) throw this.engineError(`cannot remove network ${this.network}`, error);
    }
  }

  private async inspect(container: string): Promise<DockerServer | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(container).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.engineError(`cannot inspect ${container}`, error);
    }
    const id = info.Config.Labels[SERVER_LABEL] ?? info.Name.replace(/^\//, '');
    const memory = Math.round((info.HostConfig.Memory ?? 0) / MB);
    const cpus = Math.max(1, Math.round((info.HostConfig.CpuShares ?? SHARES_PER_CPU) / SHARES_PER_CPU));
    const size: ServerSize = sizeFromLimits(memory, cpus);
    const address = info.NetworkSettings.Networks[this.network]?.IPAddress ?? '';
    const volume = info.Mounts.find((mount) => mount.Destination === '/var/lib/docker')?.Name ?? `${info.Name.replace(/^\//, '')}-docker`;
    return {
      id,
      provider: 'docker',
      name: id,
      address,
      ssh: { host: address, port: 22, user: 'root', hostKey: this.hostKeys.get(id) ?? null },
      size,
      state: info.State.Running ? 'active' : 'off',
      createdAt: new Date(info.Created).toISOString(),
      docker: { container: info.Name.replace(/^\//, ''), volume, network: this.network, image: info.Config.Image },
    };
  }

  private networkReady: Promise<void> | undefined;

  /** Makes the fleet's network once, even when several servers are added at once. */
  private ensureNetwork(): Promise<void> {
    this.networkReady ??= this.makeNetwork().catch((error: unknown) => {
      this.networkReady = undefined;
      throw error;
    });
    return this.networkReady;
  }

  private async makeNetwork(): Promise<void> {
    try {
      await this.docker.getNetwork(this.network).inspect();
      return;
    } catch (error) {
      if (statusOf(error) !== 404) throw this.engineError(`cannot inspect network ${this.network}`, error);
    }
    try {
      await this.docker.createNetwork({ Name: this.network, Driver: 'bridge', CheckDuplicate: true, Labels: { [FLEET_LABEL]: this.settings.fleet } });
      this.progress(null, `made docker network ${this.network}`);
    } catch (error) {
      if (statusOf(error) !== 409) throw this.engineError(`cannot make network ${this.network}`, error);
    }
  }

  private async removeParts(container: string, volume: string): Promise<void> {
    try {
      await this.docker.getContainer(container).remove({ force: true, v: true });
    } catch (error) {
      if (statusOf(error) !== 404) throw this.engineError(`cannot remove container ${container}`, error);
    }
    try {
      await this.docker.getVolume(volume).remove();
    } catch (error) {
      if (statusOf(error) !== 404) throw this.engineError(`cannot remove volume ${volume}`, error);
    }
  }

  private async dockerdLog(container: string): Promise<string> {
    try {
      const exec = await this.docker.getContainer(container).exec({ Cmd: ['tail', '-n', '5', '/var/log/dockerd.log'], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve) => {
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', resolve);
        stream.on('error', () => resolve());
      });
      // The stream is multiplexed: 8-byte frame headers before each chunk; drop them.
      return demux(Buffer.concat(chunks)).trim();
    } catch {
      return '';
    }
  }

  private engineError(what: string, error: unknown): PacificError {
    const message = messageOf(error);
    const hint = /no such image/i.test(message)
      ? `; make the image with scripts/server-image.sh (run by npm run setup)`
      : /connect|ENOENT|EACCES/.test(message) ? `; is dockerd running and is ${this.settings.socket} its socket?` : '';
    return new PacificError(`docker provider: ${what}: ${message}${hint}`, { cause: error });
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

function demux(buffer: Buffer): string {
  let text = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const length = buffer.readUInt32BE(offset + 4);
    text += buffer.subarray(offset + 8, offset + 8 + length).toString();
    offset += 8 + length;
  }
  return text;
}
