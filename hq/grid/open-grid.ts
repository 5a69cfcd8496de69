import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { request } from 'node:http';
import {
  AGENT_IMAGE, AgentInstallError, installAgent, installRouter, registryShipper, removeRouter, serverKey, ROUTER_CONTAINER,
  type ImageRegistry, type Progress, type RemoteEngine, type ShipResult,
} from '../../launcher/index.js';
import { createProvider, type Server } from '../../pacific/index.js';
import { routerRecordKey } from '../../router/index.js';
import { atomicWrite, type HomeLayout } from '../../home/index.js';
import type { HqConfig } from '../config.js';
import { ed25519Pair, type GridCa } from '../keys/index.js';
import { GridCluster, type ServerRole } from './grid-cluster.js';
import { StackLocks } from '../stack-lock.js';
import { Membership } from './membership.js';
import { ServerStore } from './server-store.js';

export interface OpenGridContext {
  home: HomeLayout;
  etcd: Etcd3;
  docker: Docker;
  log: (line: string) => void;
  /** etcd as the servers reach it; with it, every server that joins gets an agent. */
  agentEtcd?: string[];
  /** The grid's CA, when etcd takes only its client certificates on the servers' network. */
  agentCa?: GridCa;
  /** HQ's address as the servers see it: a member of every server's firewall. */
  advertise?: string;
  /** HQ's registry: images reach the servers by layers from it (else whole, `docker save | load`). */
  registry?: ImageRegistry & { caCert: string };
}

/**
 * HQ's grid from its config's `grid`: the provider (its settings checked, errors naming
 * `grid.provider.<key>`), the quarry key (the settings' own, else HQ's, made once under
 * `<home>/keys/quarry`), the servers recorded under `servers/`, and slicegrid's allocation.
 */
export async function openGrid(grid: NonNullable<HqConfig['grid']>, ctx: OpenGridContext): Promise<GridCluster> {
  const settings: Record<string, unknown> = { ...grid.provider };
  if (settings.privateKey === undefined && settings.privateKeyFile === undefined) settings.privateKey = quarryKey(ctx.home, ctx.log);
  const privateKey = typeof settings.privateKey === 'string' ? settings.privateKey : readFileSync(String(settings.privateKeyFile), 'utf8');
  const store = new ServerStore(ctx.home);
  const provider = createProvider(settings, { source: 'grid.provider', known: store.all() });
  const locknet = ctx.agentEtcd !== undefined && grid.locknet;
  ctx.log(`grid: ${provider.name} servers of ${grid.size}, ${grid.min} to ${grid.max}` +
    (ctx.agentEtcd === undefined ? '' : `; locknet ${locknet ? 'on' : 'off (grid.locknet)'}${ctx.agentCa ? ', etcd over TLS' : ''}`));
  return GridCluster.open({
    home: ctx.home, etcd: ctx.etcd, local: ctx.docker, provider, privateKey, log: ctx.log,
    // Router hosts follow etcd from the servers, as the agents do: none without agents.
    settings: { min: grid.min, max: grid.max, size: grid.size, routers: ctx.agentEtcd ? grid.routers : 0 },
    ...(ctx.registry && { images: registryImages(ctx.docker, ctx.registry) }),
    ...(ctx.agentEtcd && {
      membership: new Membership(ctx.etcd, ctx.advertise),
      onJoin: joinAgent({ local: ctx.docker, etcd: ctx.etcd, agentEtcd: ctx.agentEtcd, store, locknet, ...(ctx.agentCa && { ca: ctx.agentCa }) }),
    }),
  });
}

/**
 * Images by layers from HQ's registry: before its first pull, a server's engine is given the
 * grid CA's certificate for the registry's address (`/etc/docker/certs.d/HOST:PORT/ca.crt`,
 * written over SSH), so that it pulls over TLS it checks.
 */
function registryImages(local: Docker, registry: ImageRegistry & { caCert: string }) {
  return {
    shipper: registryShipper(local, registry),
    prepare: (engine: RemoteEngine) => engine.writeFile(`/etc/docker/certs.d/${registry.address}/ca.crt`, registry.caCert, 0o644),
  };
}

/**
 * The lease of every agent HQ installs: a server whose agent has not renewed it for this long
 * is probed (its engine over SSH) and, if that does not answer either, lost (docs/heal.md).
 * Short, because the probe keeps a live server whose agent is merely slow from being called lost.
 */
export const AGENT_LEASE_SECONDS = 5;

/** The TCP ports of a server open to anyone (docs/locknet.md): SSH. */
export const SERVER_PUBLIC_PORTS = [22];
/** A router host's: SSH, and its router's HTTP and HTTPS. */
export const ROUTER_HOST_PUBLIC_PORTS = [22, 80, 443];

interface JoinAgentContext {
  local: Docker;
  etcd: Etcd3;
  agentEtcd: string[];
  store: ServerStore;
  locknet: boolean;
  ca?: GridCa;
}

/**
 * A server's agent, installed when it joins (and checked again when HQ starts): its image
 * streamed in when missing, its etcd client certificate made once, the agent started (or left
 * as it is when nothing changed), and the join waits until the agent holds the server's
 * record in etcd.
 */
function joinAgent(ctx: JoinAgentContext, waitMs = 60_000) {
  const { etcd, agentEtcd } = ctx;
  // One install at a time per server (a join's, the check at HQ's start, a router host's mark):
  // two on one engine would race for the containers' names.
  const gate = new StackLocks();
  return async (server: Server, engine: Docker, progress: Progress, ship: (image: string) => Promise<ShipResult>, role: ServerRole): Promise<void> => {
    const unlock = await gate.acquire(server.id);
    try {
      await putInStep(server, engine, progress, ship, role);
    } finally {
      unlock();
    }
  };
  async function putInStep(server: Server, engine: Docker, progress: Progress, ship: (image: string) => Promise<ShipResult>, role: ServerRole): Promise<void> {
    progress.info(`starting the agent on ${server.id}`);
    await ship(AGENT_IMAGE);
    let tls: { ca: string; cert: string; key: string } | undefined;
    if (ctx.ca) {
      let issued = ctx.store.agentCert(server.id);
      if (!issued) {
        issued = await ctx.ca.issue({ cn: server.id });
        ctx.store.saveAgentCert(server.id, issued);
      }
      tls = { ca: ctx.ca.cert, ...issued };
    }
    await installAgent(engine, {
      server: server.id, address: server.address, etcd: agentEtcd, ttlSeconds: AGENT_LEASE_SECONDS,
      ...(tls && { tls }),
      ...(ctx.locknet && { locknet: { public: role.router ? ROUTER_HOST_PUBLIC_PORTS : SERVER_PUBLIC_PORTS } }),
    });
    if (role.router) {
      // The router follows etcd with the server's own certificate, as its agent does.
      const made = await installRouter(engine, { server: server.id, etcd: agentEtcd, ...(tls && { tls }) });
      if (made === 'made' && !(await answersHttp(server.address, 80, 30_000))) {
        progress.error(`the router on ${server.id} does not answer on ${server.address}:80 yet; docker restarts it if it died (docker logs ${ROUTER_CONTAINER} on ${server.id})`);
      }
    } else if (await removeRouter(engine)) {
      // Its record would stay until its lease ran out, and a deploy meanwhile would wait on it.
      await etcd.delete().key(routerRecordKey(server.id));
      progress.info(`the router on ${server.id} is stopped: it is no longer a router host`);
    }
    const deadline = Date.now() + waitMs;
    while ((await etcd.get(serverKey(server.id)).string()) === null) {
      if (Date.now() > deadline) {
        throw new AgentInstallError(`the agent on ${server.id} did not put its record in etcd within ${waitMs / 1000} s; it reaches etcd at ${agentEtcd.join(', ')} (grid.advertise): check that ${server.address} can reach it`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    progress.info(`the agent of ${server.id} holds its record in etcd`);
  }
}

/** Whether an HTTP server answers (anything: the router says 404 or 503 to a made-up host) at host:port within `withinMs`. */
async function answersHttp(host: string, port: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const answered = await new Promise<boolean>((resolve) => {
      const req = request({ host, port, path: '/', headers: { Host: 'quarry-router-check.invalid' }, timeout: 2000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
    if (answered) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * HQ's own quarry key: `<home>/keys/quarry` (0600) and `quarry.pub`, made the first time.
 * Servers let HQ in with it (the docker and DigitalOcean providers put its public half on the
 * servers they make; a static machine needs it in root's authorized_keys).
 */
export function quarryKey(home: HomeLayout, log: (line: string) => void): string {
  const file = join(home.keysDir, 'quarry');
  if (!existsSync(file)) {
    home.ensure(home.keysDir);
    const pair = ed25519Pair('quarry-hq');
    atomicWrite(file, pair.private, 0o600);
    atomicWrite(`${file}.pub`, `${pair.public}\n`, 0o644);
    log(`grid: made the quarry key ${file}; servers let HQ in with ${file}.pub`);
  }
  return readFileSync(file, 'utf8');
}
