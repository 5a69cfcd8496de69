import { resolve } from 'node:path';
import {
  FieldProblem, boolean, integer, list, loadConfig, object, optional, port, string, url, type ConfigOf, type Field, type LoadOptions,
} from '../config/index.js';
import { quarryHome } from '../home/index.js';

const KB = 1024;
const MB = 1024 * KB;
const GB = 1024 * MB;
/** The limits' defaults (docs/hq.md, "Limits"). */
export const DEFAULT_BUILD_TIMEOUT_MS = 15 * 60_000;
export const DEFAULT_BUILD_MEMORY = 2 * GB;
export const DEFAULT_MAX_PUSH_SIZE = 500 * MB;
/** How many of each stack's last releases keep their images (docs/hq.md, "Limits"). */
export const DEFAULT_KEEP_RELEASES = 5;
/** The git endpoint's door and timers (docs/hq.md, "Limits"): compare OpenSSH's LoginGraceTime (120 s) and MaxStartups (10:30:100). */
export const DEFAULT_SSH_AUTH_TIMEOUT_MS = 60_000;
export const DEFAULT_SSH_MAX_UNAUTHENTICATED = 100;
export const DEFAULT_SSH_MAX_UNAUTHENTICATED_PER_ADDRESS = 10;
export const DEFAULT_PUSH_IDLE_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_PUSH_LOCK_WAIT_MS = 10 * 60_000;

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
  /**
   * HTTPS on the embedded router (HTTP/2 and HTTP/1.1, certificates by SNI from `quarry certs`
   * and ACME), e.g. 8443 or 443; 0 picks a free port. Absent (the default): no HTTPS listens.
   */
  routerHttpsPort: optional(port()),
  /**
   * ACME (docs/hq.md, "Certificates"): for web nodes with `tls: auto`, HQ gets certificates
   * from `directory` (default Let's Encrypt's) for account `email`, and renews them when less
   * than `renewDays` are left. `ca`: a PEM file of a CA to trust for the directory (a private
   * or test ACME server). Absent: `tls: auto` domains get no certificate (HQ says so).
   */
  acme: optional(object({
    directory: url({ protocols: ['https:'], default: 'https://acme-v02.api.letsencrypt.org/directory' }),
    email: string({ nonEmpty: true }),
    ca: optional(string({ nonEmpty: true })),
    renewDays: integer({ default: 30, min: 1, max: 89 }),
  })),
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
    /**
     * Images reach the servers by layers from a registry HQ runs (docs/hq.md, "Images on a
     * grid"): TLS from the grid's CA, credentials only HQ holds. On by default (when the
     * servers have an address to reach HQ at); false: whole images, `docker save | docker load`.
     */
    registry: boolean({ default: true }),
    /** The registry's port on `advertise` (and on 127.0.0.1 for HQ's own engine); 0: the one used last, else a free one. */
    registryPort: integer({ default: 0, min: 0, max: 65535 }),
    /**
     * How many servers are router hosts (docs/hq.md, "Router hosts"): each runs `quarry router`
     * on its ports 80 and 443, following etcd, so web traffic never passes through HQ. 0: none.
     */
    routers: integer({ default: 1, min: 0, max: 1000 }),
  })),
  /**
   * locknet on HQ's own host too: only the grid's hosts reach it, anyone reaches 22 and HQ's
   * push, API and router ports. Off by default: in small mode it would firewall the user's machine.
   */
  locknet: boolean({ default: false }),
  /**
   * How long one image build of a push may run (docs/hq.md, "Limits"): `15m`, `90s`, `1h`, or
   * a number of seconds. A build past it is stopped and the push rejected.
   */
  buildTimeout: duration({ default: DEFAULT_BUILD_TIMEOUT_MS }),
  /** The memory (and memory plus swap) a build's steps get: `2GB`, `512MB`, or bytes. */
  buildMemory: size({ default: DEFAULT_BUILD_MEMORY, min: 6 * MB }),
  /** The largest pack a push may send (git's `receive.maxInputSize`): `500MB`, `1GB`, or bytes. */
  maxPushSize: size({ default: DEFAULT_MAX_PUSH_SIZE, min: 1 }),
  /**
   * The images of each stack's last `keepReleases` releases are kept; older ones that nothing
   * runs are collected (docs/hq.md, "Limits"). An integer of at least 1.
   */
  keepReleases: integer({ default: DEFAULT_KEEP_RELEASES, min: 1 }),
  /** How long a connection to the git endpoint has to log in; then it is ended (OpenSSH: LoginGraceTime). */
  sshAuthTimeout: duration({ default: DEFAULT_SSH_AUTH_TIMEOUT_MS }),
  /** Connections to the git endpoint not logged in yet, in all: a new one past it is refused (OpenSSH: MaxStartups). */
  sshMaxUnauthenticated: integer({ default: DEFAULT_SSH_MAX_UNAUTHENTICATED, min: 1 }),
  /** The same from one address (an IPv6 client: its /64); below the total, so one address cannot fill it. */
  sshMaxUnauthenticatedPerAddress: integer({ default: DEFAULT_SSH_MAX_UNAUTHENTICATED_PER_ADDRESS, min: 1 }),
  /**
   * A push whose git receive-pack waits this long on its pusher is ended, and its stack's lock
   * let go: before the pusher's input is whole (no byte either way), or after the hook's verdict
   * (the pusher takes nothing of git's output). The hook's own work (checks, builds, deploy) is
   * not counted: `buildTimeout` bounds the builds.
   */
  pushIdleTimeout: duration({ default: DEFAULT_PUSH_IDLE_TIMEOUT_MS }),
  /** A push that waits this long for another push of its stack gives up, naming that push. */
  pushLockWait: duration({ default: DEFAULT_PUSH_LOCK_WAIT_MS }),
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: KB, k: KB, mb: MB, m: MB, gb: GB, g: GB };

/** A duration, in ms: `90s`, `15m`, `1h`, `500ms`, or a number of seconds. */
export function duration(options: { default: number }): Field<number> {
  const expects = 'a duration like "15m", "90s" or a number of seconds';
  return {
    expects,
    fallback: () => options.default,
    parse(value) {
      const ms = typeof value === 'number' ? value * 1000 : parseUnits(value, DURATION_UNITS);
      if (ms === undefined || !Number.isFinite(ms) || ms <= 0) throw new FieldProblem(`must be ${expects}, got ${JSON.stringify(value)}`);
      return Math.round(ms);
    },
  };
}

/** A size, in bytes: `500MB`, `1GB`, `100KB` (units of 1024), or a number of bytes. */
export function size(options: { default: number; min: number }): Field<number> {
  const expects = `a size like "500MB" or "1GB", or a number of bytes, of at least ${formatSize(options.min)}`;
  return {
    expects,
    fallback: () => options.default,
    parse(value) {
      const bytes = typeof value === 'number' ? value : parseUnits(value, SIZE_UNITS);
      if (bytes === undefined || !Number.isFinite(bytes) || bytes < options.min) throw new FieldProblem(`must be ${expects}, got ${JSON.stringify(value)}`);
      return Math.round(bytes);
    },
  };
}

function parseUnits(value: unknown, units: Record<string, number>): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!match) return undefined;
  const unit = units[match[2]!.toLowerCase() || (units === SIZE_UNITS ? 'b' : 's')];
  return unit === undefined ? undefined : Number(match[1]) * unit;
}

/** `15 min`, `90 s`, `3 s`: how a duration reads in a message. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

/** `2 GB`, `64 MB`, `100 KB`: how a size reads in a message. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [['GB', GB], ['MB', MB], ['KB', KB]] as const) if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  return `${bytes} byte${bytes === 1 ? '' : 's'}`;
}

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

/** Settings a caller may leave out: the limits (their defaults hold) and what is off unless asked (HTTPS, ACME). */
type Limits = 'buildTimeout' | 'buildMemory' | 'maxPushSize' | 'keepReleases' | 'routerHttpsPort' | 'acme'
  | 'sshAuthTimeout' | 'sshMaxUnauthenticated' | 'sshMaxUnauthenticatedPerAddress' | 'pushIdleTimeout' | 'pushLockWait';

/** HQ's settings, with the home resolved; the limits may be left out (then their defaults hold). */
export type HqConfig = Omit<HqConfigDocument, 'home' | Limits> & Partial<Pick<HqConfigDocument, Limits>> & { home: string };

/**
 * Loads `quarry hq`'s config from a URL or path; with none, the defaults. Throws a
 * ConfigError naming the URL (and the key at fault) when it cannot be read or is wrong.
 */
export async function loadHqConfig(location: string | undefined, options: LoadOptions & { env?: NodeJS.ProcessEnv } = {}): Promise<HqConfig> {
  const document = await loadConfig(hqConfigSchema, location, options);
  return hqConfigOf(document, options.env);
}

/** Fills in what the document left to the environment (the home). */
export function hqConfigOf(document: Omit<HqConfigDocument, Limits> & Partial<Pick<HqConfigDocument, Limits>>, env: NodeJS.ProcessEnv = process.env): HqConfig {
  return { ...document, home: document.home === undefined ? quarryHome(env) : resolve(document.home) };
}
