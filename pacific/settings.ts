import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import {
  ConfigInvalidError, boolean, integer, list, optional, string, url, validateConfig, type ConfigOf,
} from '../config/index.js';
import type { ProviderName } from './types.js';

/**
 * The settings of each provider, checked with config/'s schema helpers: an unknown,
 * missing or wrong key is a ConfigInvalidError that names it. Every provider logs in to its
 * servers with the quarry key: `privateKey` (the text) or `privateKeyFile` (a path).
 */
const keySettings = {
  privateKey: optional(string({ nonEmpty: true })),
  privateKeyFile: optional(string({ nonEmpty: true })),
  /** How long a new server may take until its sshd and docker engine answer. */
  bootTimeoutMs: integer({ default: 180_000, min: 1000 }),
};

export const dockerSchema = {
  provider: string(),
  /** Names the fleet: its servers' labels, container names and network. */
  fleet: string({ default: 'default', nonEmpty: true }),
  image: string({ default: 'quarry/server:bookworm', nonEmpty: true }),
  socket: string({ default: '/var/run/docker.sock', nonEmpty: true }),
  /** The docker network the servers share; default `quarry-pacific-<fleet>`, made when missing. */
  network: optional(string({ nonEmpty: true })),
  ...keySettings,
};

export const staticSchema = {
  provider: string(),
  /** The machines, as `ssh://user@host:port` (user default root, port default 22). */
  servers: list(string({ nonEmpty: true }), { nonEmpty: true }),
  ...keySettings,
};

export const digitaloceanSchema = {
  provider: string(),
  /** An API token with droplet read/write scopes; never logged. */
  token: string({ nonEmpty: true }),
  baseUrl: url({ default: 'https://api.digitalocean.com', protocols: ['http:', 'https:'] }),
  fleet: string({ default: 'default', nonEmpty: true }),
  region: string({ default: 'nyc3', nonEmpty: true }),
  image: string({ default: 'debian-12-x64', nonEmpty: true }),
  /** Ids or fingerprints of SSH keys already in the DigitalOcean account, embedded at create. */
  sshKeys: list(string({ nonEmpty: true }), { default: [] }),
  /** Extra tags; every droplet also gets `quarry` and `quarry-fleet:<fleet>`. */
  tags: list(string({ nonEmpty: true }), { default: [] }),
  /** The image the agent runs from (HQ loads it into the server), and the agent's --config URL. */
  agentImage: string({ default: 'quarry/agent:latest', nonEmpty: true }),
  agentConfig: optional(string({ nonEmpty: true })),
  perPage: integer({ default: 100, min: 1, max: 200 }),
  pollIntervalMs: integer({ default: 5000, min: 1 }),
  /** How many times a 429 is retried before the call fails. */
  maxRetries: integer({ default: 5, min: 0 }),
  /** Wait for a new droplet's sshd and docker engine (needs the private key). */
  waitForSsh: boolean({ default: true }),
  ...keySettings,
};

export type DockerSettings = ConfigOf<typeof dockerSchema>;
export type StaticSettings = ConfigOf<typeof staticSchema>;
export type DigitalOceanSettings = ConfigOf<typeof digitaloceanSchema>;

export type ProviderSettings =
  | ({ provider: 'docker' } & Partial<Omit<DockerSettings, 'provider'>>)
  | ({ provider: 'static' } & Partial<Omit<StaticSettings, 'provider'>> & { servers: string[] })
  | ({ provider: 'digitalocean' } & Partial<Omit<DigitalOceanSettings, 'provider'>> & { token: string });

const PROVIDERS: readonly ProviderName[] = ['docker', 'static', 'digitalocean'];

/** Which provider a settings object names; a ConfigInvalidError naming `provider` otherwise. */
export function providerOf(settings: unknown, source: string): ProviderName {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    throw new ConfigInvalidError(source, undefined, 'the provider settings must be an object with a "provider" key');
  }
  const name = (settings as { provider?: unknown }).provider;
  if (typeof name !== 'string' || !PROVIDERS.includes(name as ProviderName)) {
    throw new ConfigInvalidError(source, 'provider', `must be one of ${PROVIDERS.join(', ')}, got ${JSON.stringify(name)}`);
  }
  return name as ProviderName;
}

export function parseSettings<S extends typeof dockerSchema | typeof staticSchema | typeof digitaloceanSchema>(
  schema: S, settings: unknown, source: string,
): ConfigOf<S> {
  return validateConfig(schema, settings, source);
}

/** The quarry key pair, from `privateKey` or `privateKeyFile`. */
export interface QuarryKey {
  privateKey: string;
  /** `TYPE BASE64 quarry`, for authorized_keys. */
  publicKey: string;
}

export function readQuarryKey(settings: { privateKey?: string | undefined; privateKeyFile?: string | undefined }, source: string): QuarryKey {
  if (settings.privateKey !== undefined && settings.privateKeyFile !== undefined) {
    throw new ConfigInvalidError(source, 'privateKeyFile', 'give privateKey or privateKeyFile, not both');
  }
  let privateKey = settings.privateKey;
  const key = privateKey === undefined ? 'privateKeyFile' : 'privateKey';
  if (privateKey === undefined) {
    if (settings.privateKeyFile === undefined) {
      throw new ConfigInvalidError(source, 'privateKeyFile', 'is required (or privateKey): the quarry private key, to log in to the servers');
    }
    try {
      privateKey = readFileSync(settings.privateKeyFile, 'utf8');
    } catch (error) {
      throw new ConfigInvalidError(source, 'privateKeyFile', `cannot be read: ${(error as Error).message}`);
    }
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  const parsedKey = Array.isArray(parsed) ? parsed[0] : parsed;
  if (parsedKey === undefined || parsedKey instanceof Error || !parsedKey.isPrivateKey()) {
    throw new ConfigInvalidError(source, key, `is not an unencrypted OpenSSH or PEM private key${parsedKey instanceof Error ? ` (${parsedKey.message})` : ''}`);
  }
  return { privateKey, publicKey: `${parsedKey.type} ${parsedKey.getPublicSSH().toString('base64')} quarry` };
}
