import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { validateConfig } from '../../config/index.js';
import { QuarryError } from '../../errors/index.js';
import { routerConfigSchema } from '../../router/index.js';
import { agentSettingsSchema } from './settings.js';
import { tarOf } from './tar.js';

/** The agent's image, as scripts/agent-image.sh tags it. */
export const AGENT_IMAGE = 'quarry/agent:latest';
/** The agent's container on every server. */
export const AGENT_CONTAINER = 'quarry-agent';
/** Where its settings are inside the container. */
export const AGENT_SETTINGS_PATH = '/etc/quarry/agent.json';
/** The label that marks the agent's container. */
export const AGENT_LABEL = 'quarry.agent';
/** A digest of everything the container was made from: image id, settings, create options. */
const SPEC_LABEL = 'quarry.agent.spec';
const DOCKER_SOCKET = '/var/run/docker.sock';
/** The server's folder the agent keeps its state (and synced files) in, at the same path inside. */
export const AGENT_STATE_DIR = '/var/lib/quarry';
/** Where the server's /etc/hosts is inside the agent's container. */
const HOSTS_INSIDE = '/host/etc/hosts';

/** The agent could not be installed on a server's engine. */
export class AgentInstallError extends QuarryError {}

export interface InstallAgentOptions {
  /** The server's id (its record is `/quarry/servers/<server>`). */
  server: string;
  /** The server's address, written in its record. */
  address: string;
  /** etcd's client URLs, as the server reaches them. */
  etcd: string[];
  /** Default `quarry/agent:latest`; it must be on the engine already. */
  image?: string;
  /** etcd over TLS: the grid CA and this server's client certificate and key (PEM). */
  tls?: { ca: string; cert: string; key: string };
  /** The server's firewall: the TCP ports open to anyone (docs/locknet.md). Absent: off. */
  locknet?: { public: number[] };
  /** The agent's lease: how long after the agent (or its server) is gone its record goes. Default the agent's (10 s). */
  ttlSeconds?: number;
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** The id of `image` on the engine, which must have it already; `what` is being installed. */
async function imageIdOn(docker: Docker, image: string, what: string): Promise<string> {
  try {
    return (await docker.getImage(image).inspect()).Id;
  } catch (err) {
    if (statusOf(err) === 404) {
      throw new AgentInstallError(`cannot install ${what}: the image ${image} is not on its engine; stream it in first (docker save ${image} | docker load)`);
    }
    throw new AgentInstallError(`cannot install ${what}: its engine does not answer (${(err as Error).message})`, { cause: err });
  }
}

/**
 * (Re)creates the container `quarry-agent` on a server's engine: the agent image on the host
 * network, restarted by docker always, the engine's socket, the server's /etc/hosts and
 * /var/lib/quarry bound in (with NET_ADMIN when it keeps the firewall), its settings (0600)
 * put at /etc/quarry/agent.json before it starts. Idempotent: an agent made from the same image and
 * settings is left as it is (started if it was stopped); any other is replaced. It does not
 * load the image: the caller streams it in first.
 */
export async function installAgent(docker: Docker, options: InstallAgentOptions): Promise<void> {
  const image = options.image ?? AGENT_IMAGE;
  const document = {
    server: options.server, address: options.address, etcd: options.etcd,
    // The config files and the server's /etc/hosts follow /quarry/config/files/.
    filesRoot: `${AGENT_STATE_DIR}/files`, hostsFile: HOSTS_INSIDE, stateDir: AGENT_STATE_DIR,
    ...(options.tls && { tls: options.tls }),
    ...(options.locknet && { locknet: { public: options.locknet.public } }),
    ...(options.ttlSeconds !== undefined && { ttlSeconds: options.ttlSeconds }),
  };
  // The same checks the agent makes when it reads them: a bad id fails here, not on the server.
  validateConfig(agentSettingsSchema, document, `agent settings for ${options.server}`);
  const settings = `${JSON.stringify(document, null, 2)}\n`;

  const imageId = await imageIdOn(docker, image, `the agent for ${options.server}`);

  const create: Docker.ContainerCreateOptions = {
    name: AGENT_CONTAINER,
    Image: image,
    Cmd: ['agent', '--config', `file://${AGENT_SETTINGS_PATH}`],
    Labels: { [AGENT_LABEL]: '1' },
    HostConfig: {
      NetworkMode: 'host',
      RestartPolicy: { Name: 'always' },
      Binds: [`${DOCKER_SOCKET}:${DOCKER_SOCKET}`, `${AGENT_STATE_DIR}:${AGENT_STATE_DIR}`, `/etc/hosts:${HOSTS_INSIDE}`],
      // The host's network namespace (above) and the right to change its firewall: no more.
      ...(options.locknet && { CapAdd: ['NET_ADMIN'] }),
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  };
  await ensureContainer(docker, { create, imageId, settings, settingsPath: AGENT_SETTINGS_PATH, what: `the agent for ${options.server}` });
}

/**
 * The container `create` made (or left as it is when the one there was made from the same
 * image, settings and options: the spec label), its settings put at `settingsPath` (0600)
 * before it starts.
 */
async function ensureContainer(docker: Docker, options: {
  create: Docker.ContainerCreateOptions; imageId: string; settings: string; settingsPath: string; what: string;
}): Promise<'made' | 'kept'> {
  const { create, imageId, settings } = options;
  const name = create.name!;
  const spec = createHash('sha256').update(JSON.stringify({ imageId, settings, create })).digest('hex').slice(0, 16);
  create.Labels = { ...create.Labels, [SPEC_LABEL]: spec };

  const existing = await docker.getContainer(name).inspect().catch((err: unknown) => {
    if (statusOf(err) === 404) return undefined;
    throw err;
  });
  if (existing && existing.Config.Labels?.[SPEC_LABEL] === spec && existing.Image === imageId) {
    if (!existing.State.Running) await docker.getContainer(existing.Id).start();
    return 'kept';
  }
  if (existing) await docker.getContainer(existing.Id).remove({ force: true });

  const container = await docker.createContainer(create);
  try {
    const folder = options.settingsPath.slice(1).split('/').slice(0, -1);
    await container.putArchive(tarOf([
      ...folder.map((_, i) => ({ path: folder.slice(0, i + 1).join('/') })),
      { path: options.settingsPath.slice(1), content: settings, mode: 0o600 },
    ]), { path: '/' });
    await container.start();
  } catch (err) {
    await container.remove({ force: true }).catch(() => undefined);
    throw new AgentInstallError(`cannot start ${options.what} (${(err as Error).message})`, { cause: err });
  }
  return 'made';
}

/** A router host's router: its container on the server. */
export const ROUTER_CONTAINER = 'quarry-router';
/** Where its settings (a `quarry router` config) are inside the container. */
export const ROUTER_SETTINGS_PATH = '/etc/quarry/router.json';
/** The label that marks the router's container. */
export const ROUTER_LABEL = 'quarry.router';
/** Where a router host's router answers `/health` and `/stats`: the server's loopback only. */
export const ROUTER_ADMIN_PORT = 9080;

export interface InstallRouterOptions {
  /** The server's id, for messages. */
  server: string;
  /** etcd's client URLs, as the server reaches them. */
  etcd: string[];
  /** etcd over TLS: the grid CA and the server's own client certificate and key (PEM). */
  tls?: { ca: string; cert: string; key: string };
  /** Default `quarry/agent:latest` (the router is in the agent's image); it must be on the engine already. */
  image?: string;
  /** Web traffic; default 80. */
  port?: number;
  /** HTTPS for the domains with a certificate; default 443. */
  httpsPort?: number;
  /** Router workers; default the server's cores (`quarry router`'s own default). */
  workers?: number;
}

/**
 * (Re)creates the container `quarry-router` on a router host's engine: `router --config
 * file:///etc/quarry/router.json` from the agent's image, on the host network, listening on
 * the server's ports 80 and 443, its admin listener (`/health`, `/stats`) on 127.0.0.1:9080
 * only, restarted by docker always (a crash or a reboot of the server brings it back with no
 * HQ), its settings (0600: they hold the server's etcd key) put in before it starts. It follows
 * etcd itself. Idempotent as `installAgent` is. Resolves `made` or `kept`.
 */
export async function installRouter(docker: Docker, options: InstallRouterOptions): Promise<'made' | 'kept'> {
  const image = options.image ?? AGENT_IMAGE;
  const document = {
    port: options.port ?? 80, httpsPort: options.httpsPort ?? 443, host: '0.0.0.0',
    ...(options.workers !== undefined && { workers: options.workers }),
    etcd: options.etcd,
    ...(options.tls && { etcdTls: options.tls }),
    admin: { port: ROUTER_ADMIN_PORT, host: '127.0.0.1' },
    // `/quarry/routers/<server>`: DEPLOY waits on it before it stops old web containers.
    report: { id: options.server },
  };
  validateConfig(routerConfigSchema, document, `router settings for ${options.server}`);
  const settings = `${JSON.stringify(document, null, 2)}\n`;
  const imageId = await imageIdOn(docker, image, `the router on ${options.server}`);
  const create: Docker.ContainerCreateOptions = {
    name: ROUTER_CONTAINER,
    Image: image,
    Cmd: ['router', '--config', `file://${ROUTER_SETTINGS_PATH}`],
    Labels: { [ROUTER_LABEL]: '1' },
    HostConfig: {
      NetworkMode: 'host',
      RestartPolicy: { Name: 'always' },
      // Ports 80 and 443 on the host's network: binding below 1024 is the one privilege it needs.
      CapDrop: ['ALL'],
      CapAdd: ['NET_BIND_SERVICE'],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  };
  return ensureContainer(docker, { create, imageId, settings, settingsPath: ROUTER_SETTINGS_PATH, what: `the router on ${options.server}` });
}

/** Removes a server's router container, if it has one (a server that is no longer a router host). Whether there was one. */
export async function removeRouter(docker: Docker): Promise<boolean> {
  try {
    await docker.getContainer(ROUTER_CONTAINER).remove({ force: true });
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}
