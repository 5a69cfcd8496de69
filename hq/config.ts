import { resolve } from 'node:path';
import {
  FieldProblem, boolean, integer, list, loadConfig, object, optional, port, string, url, type ConfigOf, type Field, type LoadOptions,
} from '../config/index.js';
import { quarryHome } from '../home/index.js';

/**
 * `quarry hq --config URL`: the JSON document's settings. Every key has a default that runs
 * on one machine. git (SSH) and web traffic (the router) face the world, on `host`; the HTTP
 * API answers on `apiHost`, loopback unless said otherwise, since a token is all that guards
 * it and it should be put behind TLS before it leaves the machine.
 */
export const hqConfigSchema = {
  /** The state folder; default: QUARRY_HOME, else /home/quarry as root, else ~/.quarry. */
  home: optional(string({ nonEmpty: true })),
  host: string({ default: '0.0.0.0', nonEmpty: true }),
  sshPort: port({ default: 2222 }),
  apiHost: string({ default: '127.0.0.1', nonEmpty: true }),
  apiPort: port({ default: 7070 }),
  routerPort: port({ default: 8080 }),
  /** An etcd cluster to use; when absent HQ runs its own. */
  etcd: optional(list(url({ protocols: ['http:', 'https:'] }), { nonEmpty: true })),
  /**
   * The client port of HQ's own etcd (on 127.0.0.1; its peer port is the next one). Not
   * 2379, so that it does not clash with an etcd a developer already runs. 0: free ports.
   */
  etcdPort: integer({ default: 2479, min: 0, max: 65534 }),
  /**
   * Run stacks on a grid of servers from a provider instead of the local engine (docs/hq.md,
   * "The grid"). Absent: small mode.
   */
  grid: optional(object({
    /** pacific's settings (docs/pacific.md): `provider` is docker, static or digitalocean. Checked when HQ starts. */
    provider: providerSettings(),
    /** Never fewer servers: HQ makes them at start; an emptied server above it is removed. */
    min: integer({ default: 1, min: 0, max: 1000 }),
    /** Never more servers. */
    max: integer({ default: 10, min: 1, max: 1000 }),
    /** The size of each new server: a DigitalOcean slug, whatever the provider. */
    size: string({ default: 's-1vcpu-1gb', nonEmpty: true }),
    /**
     * The address the servers reach HQ's own etcd at (their agents keep their records there);
     * default: for the docker provider, its network's gateway; else the agents are not started.
     */
    advertise: optional(string({ nonEmpty: true })),
    /**
     * Every server's firewall (docs/locknet.md): only the grid's hosts reach its ports, anyone
     * reaches 22. On by default; false leaves the servers' firewalls alone.
     */
    locknet: boolean({ default: true }),
  })),
  /**
   * locknet on HQ's own host too: only the grid's hosts reach it, anyone reaches 22 and HQ's
   * push, API and router ports. Off by default: in small mode it would firewall the user's machine.
   */
  locknet: boolean({ default: false }),
};

/** A provider's settings: an object with `provider`; its keys are pacific's to check. */
function providerSettings(): Field<Record<string, unknown> & { provider: string }> {
  return {
    expects: 'an object with "provider": docker, static or digitalocean',
    parse(value) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FieldProblem('must be an object with "provider": docker, static or digitalocean');
      const provider = (value as Record<string, unknown>).provider;
      if (typeof provider !== 'string') throw new FieldProblem('is required: docker, static or digitalocean', 'provider');
      return value as Record<string, unknown> & { provider: string };
    },
  };
}

type HqConfigDocument = ConfigOf<typeof hqConfigSchema>;

/** HQ's settings, with the home resolved. */
export type HqConfig = Omit<HqConfigDocument, 'home'> & { home: string };

/**
 * Loads `quarry hq`'s config from a URL or path; with none, the defaults. Throws a
 * ConfigError naming the URL (and the key at fault) when it cannot be read or is wrong.
 */
export async function loadHqConfig(location: string | undefined, options: LoadOptions & { env?: NodeJS.ProcessEnv } = {}): Promise<HqConfig> {
  const document = await loadConfig(hqConfigSchema, location, options);
  return hqConfigOf(document, options.env);
}

/** Fills in what the document left to the environment (the home). */
export function hqConfigOf(document: HqConfigDocument, env: NodeJS.ProcessEnv = process.env): HqConfig {
  return { ...document, home: document.home === undefined ? quarryHome(env) : resolve(document.home) };
}
