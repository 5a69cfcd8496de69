/**
 * pacific: fleets of servers from a provider, behind one small interface: `add(size)`,
 * `remove(id)`, `resize(id, size)`, `list()`, and the awaited events `added`, `removed`,
 * `resized`. Providers: `docker` (servers as containers with their own dockerd and sshd),
 * `static` (machines you already have, by ssh address), `digitalocean` (API v2). The only
 * public surface of this folder; see docs/pacific.md.
 */
export { createProvider, type CreateOptions } from './create.js';
export type { Provider } from './provider.js';
export { DockerProvider } from './docker-provider.js';
export { StaticProvider, parseSshUrl } from './static-provider.js';
export { DigitalOceanProvider, fleetTags } from './do-provider.js';
export { DigitalOceanApi, nextPage, retryAfterMs, waitUntilReset, type Action, type Droplet } from './do-api.js';
export { cloudInit, type CloudInitOptions } from './cloud-init.js';
export { hostKeyFingerprint, hostKeyOf, newHostKey, sameHostKey, type HostKeyPair } from './host-keys.js';
export { knownSizes, parseSize, resolveSize, sizeForMemory, sizeFromLimits } from './sizes.js';
export { connectSsh, execSsh, hostKeyLine, waitForServer, type SshTarget } from './ssh.js';
export type { DigitalOceanSettings, DockerSettings, ProviderSettings, StaticSettings } from './settings.js';
export {
  DigitalOceanActionError,
  DigitalOceanApiError,
  HostKeyMismatchError,
  NoCapacityError,
  PacificError,
  ProviderHandlerError,
  ServerBootError,
  UnknownServerError,
  UnknownSizeError,
  UnsupportedOperationError,
} from './errors.js';
export type {
  DigitalOceanServer,
  DockerServer,
  Progress,
  ProviderEventName,
  ProviderEvents,
  ProviderName,
  Server,
  ServerSize,
  ServerState,
  SizeRequest,
  SshEndpoint,
  StaticServer,
} from './types.js';
