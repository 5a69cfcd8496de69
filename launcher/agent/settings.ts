import { isAbsolute } from 'node:path';
import { boolean, integer, list, loadConfig, object, optional, port, string, url, FieldProblem, type ConfigOf, type Field, type LoadOptions } from '../../config/index.js';

/** A server id as it stands in an etcd key (`/quarry/servers/<id>`): no slash, nothing odd. */
const SERVER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function serverId(): Field<string> {
  const expects = 'a server id (letters, digits, ".", "_" or "-", at most 128)';
  return {
    expects,
    parse(value) {
      if (typeof value !== 'string' || !SERVER_ID.test(value)) {
        throw new FieldProblem(`must be ${expects}, got ${JSON.stringify(value) ?? String(value)}`);
      }
      return value;
    },
  };
}

function absolutePath(options: { default?: string } = {}): Field<string> {
  const expects = 'an absolute path';
  const field: Field<string> = {
    expects,
    parse(value) {
      if (typeof value !== 'string' || !isAbsolute(value) || value.includes('\0')) {
        throw new FieldProblem(`must be ${expects}, got ${JSON.stringify(value) ?? String(value)}`);
      }
      return value;
    },
  };
  const fallback = options.default;
  return fallback === undefined ? field : { ...field, fallback: () => fallback };
}

/**
 * `quarry agent --config URL`: the JSON document's settings. `server` and `etcd` have no
 * default: an agent must be told which server it speaks for and where the grid's etcd is.
 */
export const agentSettingsSchema = {
  /** The server's id: the agent writes `/quarry/servers/<server>`. */
  server: serverId(),
  /** etcd's client URLs. */
  etcd: list(url({ protocols: ['http:', 'https:'] }), { nonEmpty: true }),
  /** The server's address, written in its record; absent: the machine's first IPv4 address. */
  address: optional(string({ nonEmpty: true })),
  /** The lease's TTL: how long the record outlives an agent that died without a word. */
  ttlSeconds: integer({ default: 10, min: 1, max: 3600 }),
  /** How often `/quarry/servers/<server>/load` is written. */
  loadIntervalMs: integer({ default: 5000, min: 100 }),
  /** The docker engine the agent counts containers on. */
  dockerSocket: absolutePath({ default: '/var/run/docker.sock' }),
  /** Where `/quarry/config/files/<path>` is kept in sync; absent: no syncing. */
  filesRoot: optional(absolutePath()),
  /**
   * The server's `/etc/hosts` (as the agent sees it): `/quarry/config/files/etc/hosts` is kept
   * there as quarry's block, not under `filesRoot`. Absent: it goes under `filesRoot` like any file.
   */
  hostsFile: optional(absolutePath()),
  /**
   * A folder every agent on the server shares (the hosts file's lock, the caretaker's restart
   * history); default `/var/lib/quarry`.
   */
  stateDir: absolutePath({ default: '/var/lib/quarry' }),
  /**
   * Whether the agent looks after the server's quarry containers: restarts a crashed one by its
   * `quarry.restart` policy and reports each under `/quarry/stacks/<stack>/care/<container>`.
   */
  caretaker: boolean({ default: true }),
  /**
   * Whether the agent publishes each element instance's figures (read from its control socket)
   * each second under `/quarry/stacks/<stack>/metrics/<element>/<replica>`, under its lease.
   */
  metrics: boolean({ default: true }),
  /**
   * TLS to etcd (PEM text): the grid CA that signed etcd's certificate, and this server's
   * client certificate and key. etcd's listener on the servers' network takes nothing else.
   */
  tls: optional(object({
    ca: string({ nonEmpty: true }),
    cert: string({ nonEmpty: true }),
    key: string({ nonEmpty: true }),
  })),
  /**
   * The server's firewall (docs/locknet.md): the members under `/quarry/network/hosts/` may
   * reach every port; anyone may reach `public` (TCP). Absent: the agent leaves the firewall alone.
   */
  locknet: optional(object({
    public: list(port(), { default: [22] }),
  })),
};

/** The settings as loaded; `metrics` may be left out by a caller that builds them (absent: on). */
export type AgentSettings = Omit<ConfigOf<typeof agentSettingsSchema>, 'metrics'> & { metrics?: boolean };

/** Loads and checks the agent's settings; a ConfigError names the URL and the key at fault. */
export function loadAgentSettings(location: string, options: LoadOptions = {}): Promise<AgentSettings> {
  return loadConfig(agentSettingsSchema, location, options);
}
