import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import { QuarryError } from '../../errors/index.js';
import { startRouter, type Router } from '../../router/index.js';
import { startApi, type Api } from '../api/index.js';
import { atomicWrite, HomeLayout, makeHomePrivate } from '../../home/index.js';
import type { HqConfig } from '../config.js';
import type { ControlHandle } from '../control.js';
import { etcdTls, startOwnEtcd, type OwnEtcd } from '../etcd/index.js';
import { gridAdvertise } from '../grid/index.js';
import { HomeInUseError, ListenError } from '../errors.js';
import { startHq, type Hq } from './hq.js';
import { GridCa, loadOrCreateToken } from '../keys/index.js';
import { startHostLocknet } from './host-locknet.js';
import { startOwnRegistry, type OwnRegistry } from '../registry/index.js';
import { AcmeCertificates, CertificateStore, etcdCertificateKv } from '../certs/index.js';

/** What the part that runs stacks gets from the daemon. */
export interface DaemonContext {
  /** The config, with the ports actually listened on (a 0 in the config is a picked port). */
  config: HqConfig;
  home: HomeLayout;
  etcd: Etcd3;
  docker: Docker;
  log: (line: string) => void;
  /** etcd as a grid's servers reach it, for their agents; absent: they run without agents. */
  agentEtcd?: string[];
  /** The grid's CA: etcd takes only its client certificates on the servers' network. */
  agentCa?: GridCa;
  /** HQ's address as the servers see it. */
  advertise?: string;
  /** HQ's registry, which the servers pull images from by layers (grid mode, `grid.registry`). */
  registry?: OwnRegistry;
}

/** Starts the part that runs stacks (`startControl` from hq/deploy/, or a test's own). */
export type MakeControl = (ctx: DaemonContext) => Promise<ControlHandle>;

/** `<home>/hq.json`: how local commands find a running HQ (no secret in it). */
export interface HqInfo {
  pid: number;
  /** The API's URL from this machine. */
  api: string;
  apiPort: number;
  sshPort: number;
  routerPort: number;
  /** The embedded router's HTTPS port, when `routerHttpsPort` is set. */
  routerHttpsPort?: number;
  /** `ssh://quarry@HOST:PORT/` : add the stack's name to push. */
  push: string;
}

export interface Daemon {
  info: HqInfo;
  /** The etcd HQ uses (its own, or the configured ones). */
  etcd: string[];
  close(): Promise<void>;
}

export interface DaemonOptions {
  docker?: Docker;
  log?: (line: string) => void;
  /** How long a configured etcd gets to answer at start, in ms; default 15 s. */
  etcdWaitMs?: number;
}


/**
 * Starts HQ: the home and its lock, the API token, etcd (its own unless configured), the
 * router, the part that runs stacks, the git push path and the HTTP API; then writes
 * `<home>/hq.json` for local commands. `close()` (on SIGINT or SIGTERM) stops them in
 * reverse order. A step that fails stops what was started before it.
 */
export async function startDaemon(config: HqConfig, makeControl: MakeControl, options: DaemonOptions = {}): Promise<Daemon> {
  const log = options.log ?? ((line: string) => process.stderr.write(`quarry hq: ${line}\n`));
  const home = new HomeLayout(config.home);
  home.ensure(home.root);
  home.ensure(home.runDir);
  const closers: { what: string; close: () => Promise<void> | void }[] = [];
  const closeAll = async () => {
    for (const { what, close } of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        log(`stopping ${what}: ${(err as Error)?.message ?? String(err)}`);
      }
    }
  };

  try {
    closers.push({ what: 'the home lock', close: lockHome(home) });
    // A home made before HQ's state was private (docs/hq.md, "Files under home"): once.
    const made = makeHomePrivate(home);
    if (made.files.length + made.folders.length > 0) {
      log(`home ${home.root}: others could read ${made.files.length} file(s) and ${made.folders.length} folder(s) of HQ's state ` +
        '(env values, releases, tasks, etcd\'s data); made them private to HQ\'s user (files 0600, folders 0700)');
    }
    const token = loadOrCreateToken(home);
    log(`home ${home.root}; API token in ${home.token}`);

    const docker = options.docker ?? new Docker();
    const advertise = config.grid ? await gridAdvertise(config.grid, docker) : undefined;
    let endpoints: string[];
    let agentEtcd: string[] | undefined;
    let agentCa: GridCa | undefined;
    if (config.etcd) {
      endpoints = config.etcd;
      agentEtcd = config.grid ? config.etcd : undefined;
      if (agentEtcd) log(`grid: the servers' agents use the configured etcd ${config.etcd.join(',')} as it is: lock it yourself (docs/locknet.md)`);
    } else {
      // On the servers' network, etcd takes only clients with a certificate from the grid's CA.
      agentCa = advertise ? await GridCa.open(home) : undefined;
      const tls = agentCa && advertise ? await etcdTls(home, agentCa, [advertise]) : undefined;
      const own: OwnEtcd = await startOwnEtcd({ home, port: config.etcdPort, log, ...(advertise && { hosts: [advertise] }), ...(tls && { tls }) });
      closers.push({ what: 'the own etcd', close: () => own.stop() });
      endpoints = [own.endpoint];
      agentEtcd = own.extra.length > 0 ? own.extra : undefined;
    }
    if (config.grid && !agentEtcd) log('grid: no address for the servers to reach HQ\'s etcd at (grid.advertise): servers run without agents');
    const etcd = new Etcd3({ hosts: endpoints, dialTimeout: 5000 });
    closers.push({ what: 'the etcd client', close: () => etcd.close() });
    await reachEtcd(etcd, endpoints, config.etcd !== undefined, options.etcdWaitMs ?? 15_000);

    let registry: OwnRegistry | undefined;
    if (config.grid?.registry && advertise) {
      registry = await startOwnRegistry({
        home, ca: agentCa ?? await GridCa.open(home), host: advertise, port: config.grid.registryPort, log,
      });
      closers.push({ what: 'the registry', close: () => registry!.stop() });
    } else if (config.grid) {
      log(`grid: images reach the servers whole (docker save | docker load)${config.grid.registry ? ': no address for the servers to reach HQ at (grid.advertise)' : ''}`);
    }

    const router: Router = await listening('routerPort', config.host, config.routerPort, () =>
      startRouter({
        port: config.routerPort, host: config.host, etcd, log: (line) => log(`router: ${line}`),
        // `/quarry/routers/hq`: DEPLOY waits until this router applied a route change and drained the old backends.
        report: { id: 'hq' },
        ...(config.routerHttpsPort !== undefined && { httpsPort: config.routerHttpsPort }),
      }));
    closers.push({ what: 'the router', close: () => router.close() });

    const certs = new CertificateStore(etcdCertificateKv(etcd));
    const control = await makeControl({
      config: { ...config, routerPort: router.port }, home, etcd, docker, log,
      ...(agentEtcd && { agentEtcd }), ...(agentCa && { agentCa }), ...(advertise && { advertise }),
      ...(registry && { registry }),
    });
    closers.push({ what: 'the stack control', close: () => control.close() });

    // ACME for web nodes with `tls: auto`: after a release has routed their domains (docs/hq.md, "Certificates").
    let acme: AcmeCertificates | undefined;
    if (config.acme) {
      acme = new AcmeCertificates({
        settings: config.acme, accountKeyFile: join(home.root, 'acme', 'account.key'), etcd, store: certs, log,
      });
      acme.start();
      closers.push({ what: 'ACME', close: () => acme!.stop() });
    }
    const onRelease: typeof control.onRelease = async (stack, srcDir, spec, progress, push) => {
      await control.onRelease(stack, srcDir, spec, progress, push);
      const domains = spec.nodes.filter((n) => n.tls === 'auto').flatMap((n) => n.domains);
      if (domains.length === 0) return;
      if (!acme) {
        progress.info(`tls: auto for ${domains.join(', ')}, but HQ has no "acme" setting: no certificate is got (docs/hq.md, "Certificates")`);
        return;
      }
      progress.info(`HTTPS: getting certificates for ${domains.join(', ')} by ACME (quarry certs list shows them)`);
      // In the background: the push is done once the release is; a failure is logged by ACME and retried by its loop.
      void acme.ensure(domains).catch(() => undefined);
    };

    const hq: Hq = await listening('sshPort', config.host, config.sshPort, () =>
      startHq({
        home: home.root, sshPort: config.sshPort, host: config.host, docker, onRelease, log,
        ...(config.buildTimeout !== undefined && { buildTimeout: config.buildTimeout }),
        ...(config.buildMemory !== undefined && { buildMemory: config.buildMemory }),
        ...(config.maxPushSize !== undefined && { maxPushSize: config.maxPushSize }),
        ...(config.sshAuthTimeout !== undefined && { sshAuthTimeout: config.sshAuthTimeout }),
        ...(config.sshMaxUnauthenticated !== undefined && { sshMaxUnauthenticated: config.sshMaxUnauthenticated }),
        ...(config.sshMaxUnauthenticatedPerAddress !== undefined && { sshMaxUnauthenticatedPerAddress: config.sshMaxUnauthenticatedPerAddress }),
        ...(config.pushIdleTimeout !== undefined && { pushIdleTimeout: config.pushIdleTimeout }),
        ...(config.pushLockWait !== undefined && { pushLockWait: config.pushLockWait }),
      }));
    closers.push({ what: 'the git push path', close: () => hq.close() });

    const api: Api = await listening('apiPort', config.apiHost, config.apiPort, () =>
      startApi({ control, home, token, host: config.apiHost, port: config.apiPort, log, certs }));
    closers.push({ what: 'the HTTP API', close: () => api.close() });

    if (config.locknet) {
      // HQ's own host: the grid's members, and anyone on SSH and HQ's public ports.
      const firewall = await startHostLocknet({ etcd, publicPorts: [22, hq.sshPort, router.port, api.port], log });
      closers.push({ what: 'locknet', close: () => firewall.stop() });
    }

    const pushHost = config.host === '0.0.0.0' || config.host === '::' ? 'HQ-HOST' : config.host;
    const info: HqInfo = {
      pid: process.pid, api: api.url, apiPort: api.port, sshPort: hq.sshPort, routerPort: router.port,
      ...(router.httpsPort !== undefined && { routerHttpsPort: router.httpsPort }),
      push: `ssh://quarry@${pushHost}:${hq.sshPort}/`,
    };
    atomicWrite(home.hqInfo, `${JSON.stringify(info, null, 2)}\n`, 0o600);
    closers.push({ what: 'hq.json', close: () => removeIfOurs(home.hqInfo) });

    log(`router on http://${config.host}:${router.port}; HTTP API on ${api.url}; etcd ${endpoints.join(',')}`);
    log(`push with: git remote add quarry ${info.push}STACK && git push quarry main`);
    log(`authorise a key first: quarry keys add ~/.ssh/id_ed25519.pub`);
    return { info, etcd: endpoints, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Runs a start that listens on a port, turning "in use" into a message naming the setting. */
async function listening<T>(key: string, host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      const why = code === 'EADDRINUSE' ? 'in use' : code === 'EACCES' ? 'not allowed' : 'no such address here';
      throw new ListenError(`HQ cannot listen on ${host}:${port} (${key}): ${why}; set "${key}" in HQ's config (quarry hq --config URL)`, { cause: err });
    }
    throw err;
  }
}

/** Waits for etcd to answer (a configured one may still be booting). */
async function reachEtcd(etcd: Etcd3, endpoints: string[], configured: boolean, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await etcd.get('/quarry/ping').string();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new QuarryError(`HQ cannot reach etcd at ${endpoints.join(', ')}: ${(err as Error).message}` +
          (configured ? '; check "etcd" in HQ\'s config' : ''), { cause: err });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Takes `<home>/run/hq.lock` (the pid of the HQ that holds it), so that two HQs never serve
 * one home; a lock left by an HQ that is gone is taken over. Returns its release.
 */
function lockHome(home: HomeLayout): () => void {
  const path = home.lockFile;
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = Number.parseInt(readText(path), 10);
      if (Number.isInteger(holder) && holder > 0 && running(holder)) {
        throw new HomeInUseError(`another HQ (pid ${holder}) is running with home ${home.root}; stop it first, or give this one another "home"`);
      }
      rmSync(path, { force: true });
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => removeIfOurs(path);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Removes a file that names this process (`{"pid":…}` or a bare pid), and no other's. */
function removeIfOurs(path: string): void {
  const text = readText(path);
  let pid: unknown;
  try {
    const value = JSON.parse(text) as unknown;
    pid = typeof value === 'number' ? value : (value as { pid?: unknown } | null)?.pid;
  } catch {
    pid = undefined;
  }
  if (pid === process.pid) rmSync(path, { force: true });
}

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
