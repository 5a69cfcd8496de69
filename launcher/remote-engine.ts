import http from 'node:http';
import { Duplex } from 'node:stream';
import Docker from 'dockerode';
import type ssh2 from 'ssh2';
import { QuarryError } from '../errors/index.js';
import { connectSsh, HostKeyMismatchError, type SshTarget } from '../pacific/index.js';

/** Where a server's docker engine listens, on the server (Debian's docker.io). */
export const REMOTE_DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * Why a remote engine failed: `host-key` (the server showed another host key than the pinned
 * one), `connect` (sshd could not be reached or refused the quarry key), `lost` (the SSH
 * connection dropped while a call was in flight), `channel` (sshd would not open a channel to
 * the docker socket), `closed` (the engine was closed).
 */
export type RemoteEngineFailure = 'host-key' | 'connect' | 'lost' | 'channel' | 'closed';

/** A server's docker engine could not be reached over SSH; the message names the server. */
export class RemoteEngineError extends QuarryError {
  constructor(readonly server: string, readonly reason: RemoteEngineFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface EngineOptions {
  /** The server's name (its id), for messages and the log; default its host. */
  name?: string;
  /** Connects, drops and reconnects, a line each. */
  log?: (line: string) => void;
  /**
   * How often an idle-or-busy connection is checked (a channel open that sshd must answer);
   * after three checks without answer the connection counts as dead. Default 15 s.
   */
  keepaliveMs?: number;
}

/** A server's docker engine, reached over one long-lived SSH connection. */
export interface RemoteEngine {
  /** Every request of this dockerode instance is a new channel of the one SSH connection. */
  readonly docker: Docker;
  /** `user@host:port` */
  readonly address: string;
  readonly name: string;
  /** SSH connections made so far (1 unless the connection dropped and was made again). */
  readonly connections: number;
  /** The host key the server showed; reconnects are pinned to it. */
  readonly hostKey: string;
  /**
   * Writes a file on the server (its folder made when missing) over the same SSH connection:
   * the content goes through the command's standard input, never its arguments. For files the
   * engine reads, such as a registry's CA at `/etc/docker/certs.d/HOST:PORT/ca.crt`.
   */
  writeFile(path: string, content: string, mode?: number): Promise<void>;
  /** Ends the connection; calls in flight fail, later calls are refused. */
  close(): Promise<void>;
}

/**
 * Connects to a server's docker engine over SSH (pinned to `target.hostKey`; null: the key
 * shown now is pinned for reconnects). Resolves once the SSH connection is up; a wrong host
 * key or an unreachable sshd is a RemoteEngineError naming the server's address.
 *
 * There is one SSH connection at a time. Each HTTP request of `docker` opens a
 * `direct-streamlocal@openssh.com` channel to the server's docker socket (Debian's sshd allows
 * it by default), so streaming calls (logs, `docker save`/`load` bodies, `wait`) work as on a
 * local socket. If the connection drops, calls in flight fail with a RemoteEngineError
 * (`lost`) and the next call connects again, once; if that fails, the one after tries again.
 */
export async function connectEngine(target: SshTarget, options: EngineOptions = {}): Promise<RemoteEngine> {
  const engine = new SshEngine(target, options);
  await engine.connected();
  return engine;
}

/** The docker-modem host name of remote engines: never resolved, every socket is a channel. */
const ENGINE_HOST = 'remote-docker-engine';
const CHECKS_BEFORE_DEAD = 3;

class SshEngine implements RemoteEngine {
  readonly docker: Docker;
  readonly address: string;
  readonly name: string;
  connections = 0;
  hostKey: string;
  private readonly label: string;
  private readonly log: (line: string) => void;
  private client: ssh2.Client | null = null;
  private dialing: Promise<ssh2.Client> | null = null;
  private closed = false;
  /** Requests in flight, with their response once it started: failed by name on a drop. */
  private readonly requests = new Map<http.ClientRequest, http.IncomingMessage | null>();
  private readonly agent: http.Agent;
  private readonly heartbeat: NodeJS.Timeout;
  private unanswered = 0;
  private checking = false;
  /** Why each dropped connection was lost: what its late failures report. */
  private readonly losses = new WeakMap<ssh2.Client, RemoteEngineError>();

  constructor(private readonly target: SshTarget, options: EngineOptions) {
    this.address = `${target.user}@${target.host}:${target.port}`;
    this.name = options.name ?? target.host;
    this.label = options.name ? `server ${options.name} (${this.address})` : `server ${this.address}`;
    this.log = options.log ?? (() => undefined);
    this.hostKey = target.hostKey ?? '';
    this.agent = channelAgent(() => this.channel(), (request) => this.track(request));
    const modem = { protocol: 'http', host: ENGINE_HOST, port: 2375, agent: this.agent };
    this.docker = new Docker(modem as Docker.DockerOptions);
    this.heartbeat = setInterval(() => this.check(), options.keepaliveMs ?? 15_000);
    this.heartbeat.unref();
  }

  /** The first connection, made by connectEngine. */
  async connected(): Promise<void> {
    try {
      await this.ssh();
    } catch (error) {
      clearInterval(this.heartbeat);
      this.closed = true;
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    const client = this.client;
    this.client = null;
    this.failRequests(new RemoteEngineError(this.name, 'closed', `the connection to ${this.label}'s docker engine was closed`));
    this.agent.destroy();
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { client.destroy(); resolve(); }, 2000);
      client.once('close', () => { clearTimeout(timer); resolve(); });
      client.end();
    });
  }

  async writeFile(path: string, content: string, mode = 0o644): Promise<void> {
    if (!/^\/[A-Za-z0-9._:/@-]+$/.test(path) || path.includes('..')) {
      throw new RemoteEngineError(this.name, 'channel', `will not write ${JSON.stringify(path)} on ${this.label}: not a plain absolute path`);
    }
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    const command = `mkdir -p '${dir}' && cat > '${path}.tmp' && chmod ${mode.toString(8)} '${path}.tmp' && mv '${path}.tmp' '${path}'`;
    const client = await this.ssh();
    await new Promise<void>((resolve, reject) => {
      client.exec(command, (error, stream) => {
        if (error) return reject(new RemoteEngineError(this.name, 'channel', `${this.label} would not run a command to write ${path}: ${error.message}`, { cause: error }));
        let said = '';
        stream.stderr.on('data', (d: Buffer) => { said += d.toString(); });
        stream.on('data', () => undefined);
        stream.on('close', (code: number | null) => {
          if (code === 0) resolve();
          else reject(new RemoteEngineError(this.name, 'channel', `writing ${path} on ${this.label} failed (exit ${code}): ${said.trim() || 'no message'}`));
        });
        stream.end(content);
      });
    });
  }

  /** The live SSH connection, made when there is none (one dial at a time). */
  private ssh(): Promise<ssh2.Client> {
    if (this.closed) return Promise.reject(new RemoteEngineError(this.name, 'closed', `the connection to ${this.label}'s docker engine was closed`));
    if (this.client) return Promise.resolve(this.client);
    this.dialing ??= this.dial().finally(() => { this.dialing = null; });
    return this.dialing;
  }

  private async dial(): Promise<ssh2.Client> {
    const pinned = this.hostKey === '' ? null : this.hostKey;
    let made: Awaited<ReturnType<typeof connectSsh>>;
    try {
      made = await connectSsh({ ...this.target, hostKey: pinned, server: this.target.server ?? this.name });
    } catch (error) {
      throw this.dialError(error, pinned);
    }
    const client = made.client;
    if (this.closed) {
      client.end();
      throw new RemoteEngineError(this.name, 'closed', `the connection to ${this.label}'s docker engine was closed`);
    }
    this.connections += 1;
    this.hostKey = made.hostKey;
    this.unanswered = 0;
    this.checking = false;
    client.on('error', (error) => this.dropped(client, error.message));
    client.on('end', () => this.dropped(client, 'the server ended it'));
    client.on('close', () => this.dropped(client, 'it closed'));
    this.client = client;
    this.log(`${this.connections === 1 ? 'connected' : 'connected again'} to ${this.label} (SSH connection ${this.connections})`);
    return client;
  }

  private dialError(error: unknown, pinned: string | null): RemoteEngineError {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof HostKeyMismatchError) {
      return new RemoteEngineError(this.name, 'host-key',
        `${this.label} showed a host key other than the one pinned for it (it showed ${error.shown}, ${error.expected} is pinned): refused before logging in, nothing was run there; if the server was rebuilt outside quarry, remove it and let quarry make a new one`,
        { cause: error });
    }
    if (/verification failed/i.test(message) && pinned) {
      return new RemoteEngineError(this.name, 'host-key',
        `${this.label} showed a host key other than the one pinned for it (${pinned.split(' ')[0]} …${pinned.split(' ')[1]?.slice(-12) ?? ''}): refusing to connect; if the server was rebuilt, forget its old host key`,
        { cause: error });
    }
    const hint = /authentication methods failed/i.test(message) ? `; is the quarry key in ${this.target.user}'s authorized_keys?` : '';
    return new RemoteEngineError(this.name, 'connect', `cannot reach the docker engine of ${this.label} over SSH: ${message}${hint}`, { cause: error });
  }

  /** The connection is gone: calls in flight fail naming the server; the next call dials again. */
  private dropped(client: ssh2.Client, why: string): void {
    if (this.client !== client) return;
    this.client = null;
    this.log(`lost the SSH connection to ${this.label}: ${why}`);
    const error = this.lostError(why);
    this.losses.set(client, error);
    this.failRequests(error);
    client.destroy();
  }

  private lostError(why: string): RemoteEngineError {
    return new RemoteEngineError(this.name, 'lost', `lost the SSH connection to ${this.label} (${why}) during a docker call; the next call connects again`);
  }

  private failRequests(error: RemoteEngineError): void {
    for (const [request, response] of [...this.requests]) {
      if (response && !response.complete) response.destroy(error);
      if (request.socket) request.socket.destroy(error);
      else request.destroy(error);
    }
    this.requests.clear();
  }

  private track(request: http.ClientRequest): void {
    this.requests.set(request, null);
    request.once('response', (response: http.IncomingMessage) => {
      if (this.requests.has(request)) this.requests.set(request, response);
    });
    request.once('close', () => this.requests.delete(request));
  }

  /** A new channel to the server's docker socket, as a socket for node's HTTP client. */
  private async channel(retry = true): Promise<Duplex> {
    const client = await this.ssh();
    try {
      const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) => {
        client.openssh_forwardOutStreamLocal(REMOTE_DOCKER_SOCKET, (error, opened) => error ? reject(error) : resolve(opened));
      });
      return new ChannelSocket(channel, () => this.client === client);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.client === client && /not connected/i.test(message)) {
        // The socket died before ssh2 told us: this call is the next one, so it dials again.
        this.dropped(client, message);
        if (retry) return this.channel(false);
      }
      if (this.client !== client) throw this.losses.get(client) ?? this.lostError(message);
      throw new RemoteEngineError(this.name, 'channel', `${this.label}'s sshd would not open a channel to its docker engine (${REMOTE_DOCKER_SOCKET}): ${message}; is docker running there, and does sshd allow stream forwarding?`, { cause: error });
    }
  }

  /**
   * Keep-alive: sshd must answer a channel open (to the docker socket, closed at once); a
   * connection that leaves CHECKS_BEFORE_DEAD checks unanswered is dropped, so a dead server
   * is noticed even while no call is made. (connectSsh takes no ssh2 keepaliveInterval.)
   */
  private check(): void {
    const client = this.client;
    if (!client) return;
    if (this.checking) {
      this.unanswered += 1;
      if (this.unanswered >= CHECKS_BEFORE_DEAD) this.dropped(client, `no answer to ${this.unanswered} keep-alive checks`);
      return;
    }
    this.checking = true;
    try {
      client.openssh_forwardOutStreamLocal(REMOTE_DOCKER_SOCKET, (error, channel) => {
        if (this.client !== client) return;
        this.checking = false;
        this.unanswered = 0;
        if (!error) channel.close();
      });
    } catch (error) {
      this.dropped(client, error instanceof Error ? error.message : String(error));
    }
  }
}

/**
 * An HTTP agent whose sockets are SSH channels (`open`), one per request (no keep-alive: a
 * channel is cheap, and docker's streaming calls hold theirs). `track` sees each request.
 */
function channelAgent(open: () => Promise<Duplex>, track: (request: http.ClientRequest) => void): http.Agent {
  const agent = new http.Agent({ keepAlive: false });
  agent.createConnection = (_options, callback) => {
    open().then((socket) => callback?.(null, socket), (error: Error) => callback?.(error, undefined as unknown as Duplex));
    return undefined as unknown as Duplex;
  };
  // node's Agent hands every request to addRequest; wrapping it is how agents see requests.
  const withRequests = agent as unknown as { addRequest(request: http.ClientRequest, options: unknown): void };
  const addRequest = withRequests.addRequest.bind(agent);
  withRequests.addRequest = (request, options) => {
    track(request);
    addRequest(request, options);
  };
  return agent;
}

/**
 * An ssh2 channel as node's HTTP client wants a socket: `destroy(error)` reports the error
 * (ssh2's own destroy ignores it), the net.Socket methods the client may call exist, and a
 * channel of a dead connection is not written to (ssh2 throws once its protocol is gone).
 */
class ChannelSocket extends Duplex {
  private channelEnded = false;
  private channelClosed = false;

  constructor(private readonly channel: ssh2.ClientChannel, private readonly live: () => boolean) {
    super({ allowHalfOpen: false });
    channel.on('data', (chunk: Buffer) => { if (!this.push(chunk)) channel.pause(); });
    channel.on('end', () => {
      this.channelEnded = true;
      this.push(null);
    });
    channel.on('close', () => {
      this.channelClosed = true;
      // What the server sent before it closed is read to its end first (a paused HTTP client
      // may not have taken it all yet); then the socket goes.
      if (this.channelEnded && !this.readableEnded) this.once('end', () => this.destroy());
      else this.destroy();
    });
    channel.on('error', (error: Error) => this.destroy(error));
  }

  override _read(): void {
    this.channel.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.live()) return callback(new Error('the SSH connection is gone'));
    if (this.channelClosed) return callback(new Error('the server closed the channel'));
    this.channel.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.live() && !this.channelClosed) this.channel.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.live() && !this.channelClosed) {
      try { this.channel.close(); } catch { /* the connection went meanwhile */ }
    }
    callback(error);
  }

  setTimeout(): this { return this; }
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}
