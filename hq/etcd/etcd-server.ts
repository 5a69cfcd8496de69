import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { endLeftover, freePort, spawnOwned, type HomeLayout, type OwnedChild } from '../../home/index.js';
import { EtcdStartError } from '../errors.js';


export interface OwnEtcdOptions {
  home: HomeLayout;
  /**
   * More addresses its client port listens on besides 127.0.0.1: where a grid's servers (their
   * agents) reach it. Only addresses of networks quarry's servers are on belong here.
   */
  hosts?: string[];
  /**
   * TLS for the `hosts` listeners (files in PEM): etcd's certificate and key, and the CA whose
   * client certificates it accepts there (and only those). The loopback listener stays plain.
   */
  tls?: { cert: string; key: string; ca: string };
  /** The client port on 127.0.0.1 (its peer port is the next one); 0 picks free ports. */
  port: number;
  /** The etcd binary; default `etcd` (Debian's etcd-server package). */
  binary?: string;
  /** How long to wait for it to answer, in ms; default 30 s. */
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface OwnEtcd {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** `http://HOST:PORT` for each of `hosts` (`https://` with `tls`). */
  extra: string[];
  pid: number;
  /** Ends it (SIGTERM, SIGKILL after 10 s) and waits until it has. */
  stop(): Promise<void>;
}


/**
 * Starts the etcd HQ runs for itself when no etcd is configured: data under `<home>/etcd`,
 * listening on 127.0.0.1 only, its log in `<home>/run/etcd.log`. Resolves once it answers.
 *
 * It must not outlive HQ. HQ stops it on a clean exit; for an HQ killed outright, etcd is
 * started through util-linux's `setpriv --pdeathsig TERM`, so the kernel signals it when HQ
 * dies (Node has no prctl of its own); and its pid is kept in `<home>/run/etcd.pid`, so
 * that the next start ends one that is still there (it is ended rather than adopted: its
 * ports may not be the ones now configured).
 */
export async function startOwnEtcd(options: OwnEtcdOptions): Promise<OwnEtcd> {
  const { home } = options;
  const log = options.log ?? (() => undefined);
  home.ensure(home.runDir);
  home.ensure(home.etcdDir);
  await endLeftover(home.etcdPidFile, (argv) => isOurEtcd(argv, home.etcdDir), log, 'etcd');

  const clientPort = options.port === 0 ? await freePort() : options.port;
  const peerPort = options.port === 0 ? await freePort() : options.port + 1;
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const scheme = options.tls ? 'https' : 'http';
  const extra = (options.hosts ?? []).map((host) => `${scheme}://${host.includes(':') ? `[${host}]` : host}:${clientPort}`);
  const args = [
    '--name', 'hq',
    '--data-dir', home.etcdDir,
    '--listen-client-urls', [endpoint, ...extra].join(','),
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `hq=${peer}`,
    ...(options.tls && extra.length > 0 ? [
      '--cert-file', options.tls.cert, '--key-file', options.tls.key,
      '--trusted-ca-file', options.tls.ca, '--client-cert-auth',
    ] : []),
  ];
  const binary = options.binary ?? 'etcd';
  const logPath = join(home.runDir, 'etcd.log');
  let child: OwnedChild;
  try {
    child = await spawnOwned({ binary, args, logPath, pidFile: home.etcdPidFile, record: { dataDir: home.etcdDir, endpoint } });
  } catch (err) {
    throw new EtcdStartError(`cannot start HQ's own etcd (${binary}): ${(err as Error).message}; install Debian's etcd-server package, or set "etcd" in HQ's config`);
  }
  const { pid, exited } = child;
  const stop = () => child.stop();

  const client = new Etcd3({ hosts: endpoint, dialTimeout: 2000 });
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  try {
    for (;;) {
      const answered = await Promise.race([
        client.get('/quarry/ping').string().then(() => true, () => false),
        exited.then(() => 'exited' as const),
      ]);
      if (answered === true) break;
      if (answered === 'exited') throw startFailure(logPath, clientPort, peerPort);
      if (Date.now() > deadline) {
        await stop();
        throw new EtcdStartError(`HQ's own etcd did not answer on ${endpoint} within ${(options.startTimeoutMs ?? 30_000) / 1000} s; see ${logPath}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.close();
  }
  log(`own etcd on ${endpoint} (pid ${pid}, data ${home.etcdDir})`);
  return { endpoint, extra, pid, stop };
}

function startFailure(logPath: string, clientPort: number, peerPort: number): EtcdStartError {
  let text = '';
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    // no log: say what we know
  }
  if (/address already in use/.test(text)) {
    return new EtcdStartError(`HQ's own etcd cannot listen on 127.0.0.1:${clientPort} or :${peerPort}: in use; ` +
      `set "etcdPort" in HQ's config to a free port (the next one is used too), or "etcd" to an etcd you run`);
  }
  const tail = text.trim().split('\n').slice(-5).join('\n');
  return new EtcdStartError(`HQ's own etcd exited at start; the end of ${logPath}:\n${tail}`);
}

/** True when the process runs etcd on this data folder (and so is not a process that reused the pid). */
function isOurEtcd(argv: string[], dataDir: string): boolean {
  const at = argv.indexOf('--data-dir');
  return at >= 0 && argv[at + 1] === dataDir && argv.some((a) => /(^|\/)etcd$/.test(a));
}
