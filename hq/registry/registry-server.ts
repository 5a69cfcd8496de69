import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { atomicWrite, endLeftover, freePort, spawnOwned, type HomeLayout, type OwnedChild } from '../../home/index.js';
import type { GridCa } from '../keys/index.js';
import { RegistryError } from '../errors.js';

/** The credentials an engine pulls or pushes with (docker's X-Registry-Auth; never in a URL, an argument or a log). */
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

export interface OwnRegistryOptions {
  home: HomeLayout;
  /** Its certificate is signed by the grid's CA, which every server's engine trusts for it. */
  ca: GridCa;
  /** The address it listens on: HQ's address as the servers see it (grid.advertise). */
  host: string;
  /** Its port (the same number on 127.0.0.1 for HQ's own pushes); 0: the one used last, else a free one. */
  port: number;
  /** The registry binary; default `docker-registry` (Debian's package, distribution 2.8). */
  binary?: string;
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface OwnRegistry {
  /** `HOST:PORT` as the servers reach it: TLS with a certificate of the grid's CA, and basic auth. */
  address: string;
  /** `127.0.0.1:PORT`, a plain forward to `address` for HQ's own engine (docker talks to a loopback registry without a CA file). */
  local: string;
  /** What a server's engine pulls with. */
  auth: RegistryAuth;
  /** What HQ's engine pushes with. */
  localAuth: RegistryAuth;
  /** The CA's certificate (PEM): a server's engine trusts it at `/etc/docker/certs.d/<address>/ca.crt`. */
  caCert: string;
  /** Its log (JSON lines, one per request answered: `http.request.remoteaddr`, `http.response.written`). */
  logPath: string;
  pid: number;
  /** Asks it something over its API (TLS and credentials), for the collection of old images. */
  api(method: string, path: string, headers?: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  /**
   * Stops it, runs the registry's own `garbage-collect` over its storage (blobs no manifest
   * names any more go), and starts it again on the same address. Pulls during those seconds
   * fail: call it only when nothing deploys.
   */
  garbageCollect(): Promise<string>;
  /** Resolves when it answers: at once, or once a garbage collection has started it again. */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

const USER = 'quarry';

/**
 * Starts the registry HQ runs for a grid: storage under `<home>/registry/data`, listening on
 * `host:port` only (the servers' network) with TLS from the grid's CA and htpasswd (bcrypt)
 * credentials that only HQ holds (`<home>/registry/password`, 0600) and hands to a server's
 * engine per pull; a forward on 127.0.0.1 for HQ's own engine. Like HQ's etcd it dies with HQ
 * (`setpriv --pdeathsig`), and one left by a killed HQ is ended at the next start.
 */
export async function startOwnRegistry(options: OwnRegistryOptions): Promise<OwnRegistry> {
  const { home, host } = options;
  const log = options.log ?? (() => undefined);
  const dir = home.ensure(join(home.root, 'registry'));
  const dataDir = home.ensure(join(dir, 'data'));
  const pidFile = join(home.runDir, 'registry.pid');
  const configPath = join(dir, 'config.yml');
  home.ensure(home.runDir);
  await endLeftover(pidFile, (argv) => argv.includes(configPath), log, 'registry');

  const port = options.port !== 0 ? options.port : await rememberedPort(join(dir, 'port'));
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const tls = await options.ca.serverFiles('registry', [host]);
  const password = secret(join(dir, 'password'));
  atomicWrite(join(dir, 'htpasswd'), `${USER}:${bcrypt.hashSync(password, 10)}\n`, 0o600);
  // JSON is YAML: no quoting to get wrong.
  atomicWrite(configPath, `${JSON.stringify({
    version: '0.1',
    log: { level: 'info', formatter: 'json', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: dataDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: true, age: '24h', interval: '1h', dryrun: false } },
    },
    http: { addr: address, secret: randomBytes(24).toString('hex'), tls: { certificate: tls.cert, key: tls.key } },
    auth: { htpasswd: { realm: 'quarry', path: join(dir, 'htpasswd') } },
  }, null, 2)}\n`, 0o600);

  const binary = options.binary ?? 'docker-registry';
  const logPath = join(home.runDir, 'registry.log');
  const caCert = options.ca.cert;
  const auth: RegistryAuth = { username: USER, password, serveraddress: address };
  const api: OwnRegistry['api'] = (method, path, headers = {}) => registryRequest(host, port, caCert, auth, method, path, headers);

  let child: OwnedChild | undefined;
  /** While a garbage collection has it stopped: what pulls and pushes wait for. */
  let pausing: Promise<void> | undefined;
  const start = async (): Promise<void> => {
    try {
      child = await spawnOwned({ binary, args: ['serve', configPath], logPath, pidFile, record: { config: configPath } });
    } catch (err) {
      throw new RegistryError(`cannot start HQ's registry (${binary}): ${(err as Error).message}; install Debian's docker-registry package, or set "grid.registry": false in HQ's config`);
    }
    const started = child;
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    for (;;) {
      const answered = await Promise.race([
        api('GET', '/v2/').then((r) => r.status === 200, () => false),
        started.exited.then(() => 'exited' as const),
      ]);
      if (answered === true) return;
      if (answered === 'exited' || Date.now() > deadline) {
        await started.stop();
        const tail = readTail(logPath);
        throw new RegistryError(answered === 'exited'
          ? `HQ's registry exited at start (${address}); the end of ${logPath}:\n${tail}`
          : `HQ's registry did not answer on https://${address}/v2/ within ${(options.startTimeoutMs ?? 30_000) / 1000} s; see ${logPath}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await start();

  let forward: Server;
  try {
    forward = await listenForward(port, host);
  } catch (err) {
    await child?.stop();
    throw new RegistryError(`HQ's registry forward cannot listen on 127.0.0.1:${port}: ${(err as Error).message}; set "grid.registryPort" in HQ's config to a free port`, { cause: err });
  }
  const local = `127.0.0.1:${port}`;
  log(`own registry on https://${address} (pid ${child!.pid}, data ${dataDir}); HQ's engine pushes through ${local}`);
  return {
    address, local, auth, localAuth: { ...auth, serveraddress: local }, caCert, logPath,
    get pid() { return child?.pid ?? 0; },
    api,
    garbageCollect() {
      const work = (async () => {
        await child?.stop();
        const gcLog = join(home.runDir, 'registry-gc.log');
        try {
          const gc = await spawnOwned({ binary, args: ['garbage-collect', '--delete-untagged', configPath], logPath: gcLog, pidFile: join(home.runDir, 'registry-gc.pid') });
          const code = await gc.exited;
          if (code !== 0) throw new RegistryError(`the registry's garbage-collect exited with ${code}; see ${gcLog}`);
        } finally {
          await start();
        }
        const text = readTail(gcLog, 100_000);
        const deleted = text.split('\n').filter((l) => /^blob eligible for deletion/i.test(l.trim())).length;
        return `${deleted} blob(s) deleted`;
      })();
      pausing = work.then(() => undefined, () => undefined).finally(() => { pausing = undefined; });
      return work;
    },
    ready: () => pausing ?? Promise.resolve(),
    async stop() {
      await new Promise<void>((resolve) => forward.close(() => resolve()));
      await child?.stop();
    },
  };
}

/** The port used last (kept in `file`), while it is still free; else a free one, kept. */
async function rememberedPort(file: string): Promise<number> {
  const kept = existsSync(file) ? Number.parseInt(readFileSync(file, 'utf8'), 10) : Number.NaN;
  if (Number.isInteger(kept) && kept > 0 && (await portFree(kept))) return kept;
  const port = await freePort();
  atomicWrite(file, `${port}\n`, 0o644);
  return port;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** The registry's password: made once, 0600, never printed. */
function secret(file: string): string {
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept.length >= 16) return kept;
  }
  const made = randomBytes(24).toString('base64url');
  atomicWrite(file, `${made}\n`, 0o600);
  return made;
}

/** A plain TCP forward from 127.0.0.1:port to the registry (its TLS passes through untouched). */
function listenForward(port: number, host: string): Promise<Server> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
  });
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    for (const s of open) s.destroy();
    return close(cb);
  }) as typeof server.close;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function registryRequest(host: string, port: number, ca: string, auth: RegistryAuth, method: string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request({
      host, port, method, path, ca, timeout: 10_000,
      headers: { ...headers, authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from the registry within 10 s (${method} ${path})`)));
    req.on('error', reject);
    req.end();
  });
}

function readTail(path: string, lines = 5): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
