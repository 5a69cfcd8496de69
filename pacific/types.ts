/**
 * The words of pacific: a server as a provider reports it, its size, and the events a
 * fleet announces. Sizes are whole megabytes, like `memory:` in quarry.yml and slicegrid.
 */

export type ProviderName = 'docker' | 'static' | 'digitalocean';

/**
 * How big a server is. `slug` names it the way DigitalOcean does (`s-1vcpu-1gb`); every
 * provider understands the same slugs, see sizes.ts. A static machine has no slug: its size is
 * what it measured.
 */
export interface ServerSize {
  slug: string | null;
  /** MB. */
  memory: number;
  cpus: number;
  /** GB; 0 when the provider does not limit it. */
  disk: number;
}

/** What `add` and `resize` take: a size slug, or MB (the smallest known size with at least that memory). */
export type SizeRequest = string | number;

/** Where quarry's SSH connection to the server goes. */
export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /**
   * The host key every connection to the server is pinned to (`ssh-ed25519 AAAA…`): for a
   * DigitalOcean droplet the key quarry made and handed in with its user data, known before it
   * first answered; for docker and static servers the key shown when first reached. Null when
   * not known yet (see docs/pacific.md, Host keys).
   */
  hostKey: string | null;
}

export type ServerState = 'new' | 'active' | 'off';

interface ServerBase {
  /** Unique within the provider and stable for the server's life: slicegrid's block id. */
  id: string;
  provider: ProviderName;
  name: string;
  /** The address the rest of the grid reaches the server at (IPv4, or a host name for static machines). */
  address: string;
  ssh: SshEndpoint;
  size: ServerSize;
  state: ServerState;
  /** ISO 8601. */
  createdAt: string;
}

export interface DockerServer extends ServerBase {
  provider: 'docker';
  docker: {
    /** The container that is the server. */
    container: string;
    /** The volume that holds the server's own /var/lib/docker. */
    volume: string;
    network: string;
    image: string;
  };
}

export interface StaticServer extends ServerBase {
  provider: 'static';
  static: {
    /** As given in the settings: `ssh://user@host:port`. */
    url: string;
  };
}

export interface DigitalOceanServer extends ServerBase {
  provider: 'digitalocean';
  digitalocean: {
    dropletId: number;
    region: string;
    image: string;
    tags: string[];
  };
}

/** A server as its provider reports it; HQ stores it as `servers/<id>/settings.json`. */
export type Server = DockerServer | StaticServer | DigitalOceanServer;

/** One step of a long operation, for a task's messages or a terminal. */
export interface Progress {
  /** The server it is about, once it has an id. */
  server: string | null;
  message: string;
}

/**
 * The events of a fleet. `added`, `removed` and `resized` are awaited in turn, like
 * slicegrid's: the call that caused one resolves after its handlers did, and a handler that
 * fails fails the call (see Provider for what is undone then). `progress` is not awaited.
 */
export interface ProviderEvents {
  added: (server: Server) => unknown;
  removed: (server: Server) => unknown;
  resized: (server: Server, before: ServerSize) => unknown;
  progress: (progress: Progress) => void;
}

export type ProviderEventName = keyof ProviderEvents;
