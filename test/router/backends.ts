import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer, connect, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';

/**
 * A real backend on loopback that answers with its own name, counts what it served, holds
 * requests to `/hold` until `release()`, and echoes WebSocket messages prefixed with its name.
 */
export interface Backend {
  name: string;
  url: string;
  port: number;
  served: number;
  held: number;
  lastHeaders: IncomingHttpHeaders | undefined;
  /** The request target of the last request, as the backend got it. */
  lastUrl: string | undefined;
  release(): void;
  /** Stops taking connections, lets requests in flight finish (like a container's SIGTERM). */
  close(): Promise<void>;
}

export async function startBackend(name: string): Promise<Backend> {
  let releaseHeld!: () => void;
  let gate = new Promise<void>((resolve) => { releaseHeld = resolve; });
  const server: Server = createServer((req, res) => {
    backend.lastHeaders = req.headers;
    backend.lastUrl = req.url;
    if (req.url === '/hold') {
      backend.held++;
      void gate.then(() => {
        backend.served++;
        res.end(`${name} held`);
      });
      return;
    }
    if (req.url === '/big') {
      backend.served++;
      res.end(Buffer.alloc(1 << 20, 'a'));
      return;
    }
    if (req.url === '/stream') {
      backend.served++;
      res.write('one,');
      setImmediate(() => { res.write('two,'); setImmediate(() => res.end('three')); });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      backend.served++;
      res.setHeader('X-Backend', name);
      res.end(chunks.length ? `${name} got ${Buffer.concat(chunks).toString()}` : name);
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    backend.lastHeaders = req.headers;
    ws.on('message', (data) => ws.send(`${name}: ${data.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const backend: Backend = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    served: 0,
    held: 0,
    lastHeaders: undefined,
    lastUrl: undefined,
    release() {
      releaseHeld();
      gate = Promise.resolve();
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return backend;
}

export interface Reply {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** One HTTP request to the router with a given Host header. */
export function get(port: number, host: string, path = '/', agent?: Agent, method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host }, agent: agent ?? false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls until `check` holds; fails with `what` after a generous deadline (not an assertion on time). */
export async function until(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A port that refuses connections: it was free a moment ago and nothing listens on it. */
export async function deadUrl(): Promise<string> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/**
 * A TCP relay in front of etcd whose link can be cut and restored, to cut the router off
 * etcd while etcd itself stays up and can be changed.
 */
export class TcpCut {
  private readonly server: TcpServer;
  private readonly sockets = new Set<Socket>();
  private cutOff = false;
  port = 0;

  constructor(private readonly targetPort: number) {
    this.server = createTcpServer((client) => {
      if (this.cutOff) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.cutOff = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.cutOff = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** `quarry router --config URL` as a child process, once it has said where it listens. */
export interface RouterCli {
  child: ChildProcess;
  /** What it wrote so far. */
  readonly out: string;
  readonly err: string;
  /** Its exit code, once it exits. */
  exited: Promise<number | null>;
  port: number;
  adminPort: number;
}

/**
 * Starts `quarry router --config <configUrl>` from the repo (under tsx) and waits, generously
 * (workers start under tsx on a machine other work shares), until it says where it listens.
 * The test's teardown kills it if it still runs.
 */
export async function spawnRouterCli(t: { teardown(fn: () => void): void }, configUrl: string, waitMs = 120_000): Promise<RouterCli> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'router', '--config', configUrl], {
    cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { err += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await until('the router says where it listens', () => /health and stats on/.test(out), waitMs)
    .catch((e: Error) => { throw new Error(`${e.message}; stdout: ${out}; stderr: ${err}`); });
  const match = /listening on http:\/\/127\.0\.0\.1:(\d+), health and stats on http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(out);
  if (!match) throw new Error(`the router did not say its ports: ${out}`);
  return {
    child, exited, port: Number(match[1]), adminPort: Number(match[2]),
    get out() { return out; },
    get err() { return err; },
  };
}
