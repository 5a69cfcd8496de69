import { randomBytes } from 'node:crypto';
import { cloudInit } from './cloud-init.js';
import { DigitalOceanApi, type Action, type Droplet } from './do-api.js';
import { DigitalOceanActionError, PacificError, UnknownServerError } from './errors.js';
import { hostKeyFingerprint, hostKeyOf, newHostKey } from './host-keys.js';
import { FleetProvider } from './provider.js';
import type { DigitalOceanSettings, QuarryKey } from './settings.js';
import { resolveSize } from './sizes.js';
import { waitForServer } from './ssh.js';
import type { DigitalOceanServer, Server, SizeRequest } from './types.js';

/** The tag every quarry droplet has, and the one that names its fleet. */
export function fleetTags(fleet: string): string[] {
  return ['quarry', `quarry-fleet:${fleet}`];
}

/** An id of the settings' `sshKeys`: a number when it is all digits, else a fingerprint. */
function sshKeyRef(text: string): string | number {
  return /^\d+$/.test(text) ? Number(text) : text;
}

/**
 * Droplets on DigitalOcean (API v2). A droplet is tagged `quarry` and `quarry-fleet:<fleet>`;
 * the fleet is every droplet with the fleet's tag, so `list` needs no state of its own.
 *
 * Each droplet's SSH host key is made here and handed in with its cloud-init user data, and
 * pinned from the first connection on (see docs/pacific.md, Host keys). The pins live in
 * `hostKeys`, seeded from the records HQ kept (`known`: `ssh.hostKey` of each stored server),
 * so that a provider made after a restart checks the same keys.
 */
export class DigitalOceanProvider extends FleetProvider {
  readonly name = 'digitalocean' as const;
  private readonly api: DigitalOceanApi;
  /** The pinned host key (`ssh-ed25519 BASE64`) of each server, by id. */
  private readonly hostKeys = new Map<string, string>();

  constructor(private readonly settings: DigitalOceanSettings, private readonly key: QuarryKey, sleep?: (ms: number) => Promise<void>, known: readonly Server[] = []) {
    super();
    for (const server of known) {
      if (server.provider === 'digitalocean' && server.ssh.hostKey) this.hostKeys.set(server.id, hostKeyOf(server.ssh.hostKey));
    }
    this.api = new DigitalOceanApi({
      baseUrl: settings.baseUrl,
      token: settings.token,
      maxRetries: settings.maxRetries,
      progress: (message) => this.progress(null, message),
      ...(sleep ? { sleep } : {}),
    });
  }

  protected unknown(id: string): Error {
    return new UnknownServerError('digitalocean', id);
  }

  protected async create(request: SizeRequest): Promise<DigitalOceanServer> {
    const size = resolveSize(request);
    if (size.slug === null) throw new PacificError('a DigitalOcean droplet needs a size slug');
    const name = `quarry-${this.settings.fleet}-${randomBytes(3).toString('hex')}`;
    const tags = [...new Set([...fleetTags(this.settings.fleet), ...this.settings.tags])];
    this.progress(null, `asking DigitalOcean for droplet ${name} (${size.slug} in ${this.settings.region})`);
    // The host key is made here and goes only into the user data: the private half is kept
    // nowhere else (not on disk, not in a message); the public half is the droplet's pin.
    const hostKey = newHostKey(`quarry-host-${name}`);
    const userData = cloudInit({ publicKey: this.key.publicKey, agentImage: this.settings.agentImage, agentConfig: this.settings.agentConfig, hostKey });
    const pin = hostKeyOf(hostKey.publicKey);
    const created = await this.api.request<{ droplet: Droplet; links: { actions?: Array<{ id: number }> } }>('POST', '/v2/droplets', {
      name,
      region: this.settings.region,
      size: size.slug,
      image: this.settings.image,
      ssh_keys: this.settings.sshKeys.map(sshKeyRef),
      tags,
      user_data: userData,
      ipv6: false,
      monitoring: false,
    });
    const id = serverId(created.droplet.id);
    this.hostKeys.set(id, pin);
    this.progress(id, `droplet ${created.droplet.id} gets host key ${hostKeyFingerprint(pin)} (pinned)`);
    try {
      const action = created.links.actions?.[0];
      if (action) await this.waitForAction(action.id, id);
      let droplet = await this.droplet(created.droplet.id);
      // The create action can finish a moment before the address shows.
      while (publicAddress(droplet) === undefined || droplet.status === 'new') {
        await this.sleepPoll();
        droplet = await this.droplet(created.droplet.id);
      }
      return await this.answered(toServer(droplet, this.hostKeys));
    } catch (error) {
      // A droplet that never came up is deleted again, so that a failed add leaves the fleet as it was.
      this.progress(id, `droplet ${created.droplet.id} did not come up; deleting it`);
      await this.api.request('DELETE', `/v2/droplets/${created.droplet.id}`).catch(() => undefined);
      this.hostKeys.delete(id);
      throw error;
    }
  }

  protected async destroy(server: DigitalOceanServer): Promise<void> {
    this.progress(server.id, `deleting droplet ${server.digitalocean.dropletId}`);
    await this.api.request('DELETE', `/v2/droplets/${server.digitalocean.dropletId}`);
    this.hostKeys.delete(server.id);
  }

  protected async change(server: DigitalOceanServer, request: SizeRequest): Promise<DigitalOceanServer> {
    const size = resolveSize(request);
    if (size.slug === null) throw new PacificError('a DigitalOcean droplet needs a size slug');
    const dropletId = server.digitalocean.dropletId;
    // A droplet is resized while off: power off, resize (RAM and CPU only, so it can shrink back), power on.
    const steps: Array<Record<string, unknown>> = [
      { type: 'power_off' },
      { type: 'resize', size: size.slug, disk: false },
      { type: 'power_on' },
    ];
    let off = false;
    try {
      for (const step of steps) {
        this.progress(server.id, `droplet ${dropletId}: ${step.type}${step.size ? ` to ${String(step.size)}` : ''}`);
        const { action } = await this.api.request<{ action: Action }>('POST', `/v2/droplets/${dropletId}/actions`, step);
        await this.waitForAction(action.id, server.id);
        off = step.type !== 'power_on';
      }
    } catch (error) {
      // A failed resize must not leave the server off: power it on at its old size.
      if (off) {
        this.progress(server.id, `droplet ${dropletId}: the resize failed; powering it on again at its old size`);
        await this.api.request<{ action: Action }>('POST', `/v2/droplets/${dropletId}/actions`, { type: 'power_on' })
          .then(({ action }) => this.waitForAction(action.id, server.id))
          .catch(() => undefined);
      }
      throw error;
    }
    return await this.answered(toServer(await this.droplet(dropletId), this.hostKeys));
  }

  async list(): Promise<DigitalOceanServer[]> {
    const tag = encodeURIComponent(fleetTags(this.settings.fleet)[1]!);
    const droplets = await this.api.all<Droplet>(`/v2/droplets?tag_name=${tag}&per_page=${this.settings.perPage}`, 'droplets');
    return droplets.map((droplet) => toServer(droplet, this.hostKeys));
  }

  override async get(id: string): Promise<DigitalOceanServer | undefined> {
    const match = /^do-(\d+)$/.exec(id);
    if (!match) return undefined;
    try {
      const droplet = await this.droplet(Number(match[1]));
      return droplet.tags.includes(fleetTags(this.settings.fleet)[1]!) ? toServer(droplet, this.hostKeys) : undefined;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  }

  private async droplet(id: number): Promise<Droplet> {
    return (await this.api.request<{ droplet: Droplet }>('GET', `/v2/droplets/${id}`)).droplet;
  }

  /** Polls an action until it is completed; an errored one fails the step. */
  private async waitForAction(actionId: number, server: string): Promise<Action> {
    for (;;) {
      const { action } = await this.api.request<{ action: Action }>('GET', `/v2/actions/${actionId}`);
      if (action.status === 'completed') return action;
      if (action.status === 'errored') throw new DigitalOceanActionError(action.id, action.type, action.resource_id);
      this.progress(server, `action ${action.id} (${action.type}) is ${action.status}`);
      await this.sleepPoll();
    }
  }

  private sleepPoll(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.settings.pollIntervalMs));
  }

  /**
   * Waits for the server's sshd (showing its pinned key, else a HostKeyMismatchError at once)
   * and docker engine. A server with no pin (made before quarry pinned host keys, and not in
   * HQ's records) is pinned to the key it shows now, once, and said so.
   */
  private async answered(server: DigitalOceanServer): Promise<DigitalOceanServer> {
    if (!this.settings.waitForSsh) return server;
    const answered = await waitForServer(
      { host: server.address, port: 22, user: 'root', privateKey: this.key.privateKey, hostKey: server.ssh.hostKey, server: server.id },
      { server: server.id, timeoutMs: this.settings.bootTimeoutMs, progress: (message) => this.progress(server.id, message) },
    );
    if (server.ssh.hostKey === null) {
      this.progress(server.id, `server ${server.id} had no pinned host key (made before quarry pinned them); pinned the one it showed now, ${hostKeyFingerprint(answered.hostKey)}`);
      this.hostKeys.set(server.id, answered.hostKey);
    }
    return { ...server, ssh: { ...server.ssh, hostKey: this.hostKeys.get(server.id) ?? answered.hostKey } };
  }
}

export function serverId(dropletId: number): string {
  return `do-${dropletId}`;
}

export function publicAddress(droplet: Droplet): string | undefined {
  return droplet.networks.v4?.find((network) => network.type === 'public')?.ip_address;
}

function toServer(droplet: Droplet, hostKeys: Map<string, string>): DigitalOceanServer {
  const id = serverId(droplet.id);
  const address = publicAddress(droplet) ?? '';
  return {
    id,
    provider: 'digitalocean',
    name: droplet.name,
    address,
    ssh: { host: address, port: 22, user: 'root', hostKey: hostKeys.get(id) ?? null },
    size: { slug: droplet.size_slug, memory: droplet.memory, cpus: droplet.vcpus, disk: droplet.disk },
    state: droplet.status === 'active' ? 'active' : droplet.status === 'new' ? 'new' : 'off',
    createdAt: droplet.created_at,
    digitalocean: {
      dropletId: droplet.id,
      region: droplet.region.slug,
      image: droplet.image.slug ?? droplet.image.name ?? String(droplet.image.id ?? ''),
      tags: droplet.tags,
    },
  };
}
