import type Docker from 'dockerode';
import { DEFAULT_RESTART, parseRestartLabel, restartLabel, type ContainerRequest, type RestartPolicy, type UnitKind } from '../plan/index.js';
import { containerName, LABELS, networkName } from './labels.js';

export type ContainerKind = UnitKind;

/**
 * One container of a stack, as quarry starts it: the plan's request (plan/placement.ts), and
 * where on its server its ports are published.
 */
export interface ContainerSpec extends ContainerRequest {
  /** Where the container's ports are published; default 127.0.0.1 (loopback only). */
  publishHost?: string;
  /**
   * The host port each published container port is bound to, chosen by the caller and kept
   * across restarts; a port not named gets one docker picks (which changes when it restarts).
   */
  hostPorts?: Record<number, number>;
}

/** The container ports a spec publishes: its port and `publish`, once each. */
export function publishedPorts(spec: Pick<ContainerSpec, 'port' | 'publish'>): number[] {
  return [...new Set([...(spec.port !== undefined ? [spec.port] : []), ...(spec.publish ?? [])])];
}

export interface RunningContainer {
  id: string;
  name: string;
  stack: string;
  unit: string;
  kind: ContainerKind;
  n: number;
  state: string;
  digest?: string;
  release?: string;
  member?: number;
  /** The container's address on its stack's network. */
  ip?: string;
  /** The host port its `port` is published on. */
  hostPort?: number;
  /** Every published port: container port → host port. */
  hostPorts: Record<number, number>;
  /** Its memory limit, MB (its slice's size). */
  memoryMb: number;
  /**
   * How it is restarted when it dies: its `quarry.restart` policy, which the server's caretaker
   * follows; `docker` for a container made by an older quarry that docker itself restarts.
   */
  restart: RestartPolicy | 'docker';
}

/**
 * The most processes (threads count too) one container may run: a fork bomb in one app stops
 * at its own container, and the server's process table stays for the others. Far above what
 * a node or element needs (a node program runs a dozen threads). docs/launcher.md.
 */
export const CONTAINER_PIDS_LIMIT = 1024;

/**
 * Docker's json-file log, rotated: at most three files of 10 MB per container, so an app that
 * prints without end cannot fill its server's disk. `quarry logs` reads the newest 30 MB.
 */
export const CONTAINER_LOG_CONFIG = { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } };

const making = new Map<string, Promise<string>>();

/**
 * The stack's own bridge network, made when missing. Containers find each other by name on it.
 * Calls for one stack are serialised: docker allows two networks of one name, and two made at
 * once would split the stack's containers between them.
 */
export function ensureNetwork(docker: Docker, stack: string): Promise<string> {
  const name = networkName(stack);
  const before = making.get(name) ?? Promise.resolve(name);
  const mine = before.catch(() => name).then(() => makeNetwork(docker, stack, name));
  making.set(name, mine);
  void mine.finally(() => { if (making.get(name) === mine) making.delete(name); }).catch(() => undefined);
  return mine;
}

async function makeNetwork(docker: Docker, stack: string, name: string): Promise<string> {
  const existing = await docker.listNetworks({ filters: { name: [name] } });
  if (existing.some((n) => n.Name === name)) return name;
  try {
    await docker.createNetwork({ Name: name, Driver: 'bridge', Labels: { [LABELS.stack]: stack } });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 409) throw err; // made meanwhile
  }
  return name;
}

/** Creates and starts one container; on its stack's network its unit's name resolves to it. */
export async function startContainer(docker: Docker, spec: ContainerSpec): Promise<RunningContainer> {
  const network = await ensureNetwork(docker, spec.stack);
  const name = containerName(spec.stack, spec.name, spec.n);
  const labels: Record<string, string> = {
    [LABELS.stack]: spec.stack, [LABELS.name]: spec.name, [LABELS.kind]: spec.kind, [LABELS.slice]: name,
    [LABELS.restart]: restartLabel(spec.restart ?? DEFAULT_RESTART),
  };
  if (spec.release) labels[LABELS.release] = spec.release;
  if (spec.digest) labels[LABELS.digest] = spec.digest;
  if (spec.member !== undefined) labels[LABELS.member] = String(spec.member);
  if (spec.port !== undefined) labels[LABELS.port] = String(spec.port);
  const port = spec.port !== undefined ? `${spec.port}/tcp` : undefined;
  const published = publishedPorts(spec).map((p) => `${p}/tcp`);
  const binding = (p: string) => [{ HostIp: spec.publishHost ?? '127.0.0.1', HostPort: String(spec.hostPorts?.[Number.parseInt(p, 10)] ?? '') }];
  const container = await docker.createContainer({
    name,
    Image: spec.image,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...(spec.command && { Cmd: spec.command }),
    Labels: labels,
    ...(published.length > 0 && { ExposedPorts: Object.fromEntries(published.map((p) => [p, {}])) }),
    HostConfig: {
      // docker-init (tini) as PID 1 passes SIGTERM on: a program that is PID 1 itself gets no
      // default signal handlers, ignores SIGTERM, and is killed only at the end of the grace time.
      Init: true,
      // Its slice, and no swap beyond it (memory and swap together are the slice).
      Memory: spec.memoryMb * 1024 * 1024,
      MemorySwap: spec.memoryMb * 1024 * 1024,
      PidsLimit: CONTAINER_PIDS_LIMIT,
      LogConfig: CONTAINER_LOG_CONFIG,
      NetworkMode: network,
      // Not docker's: the server's caretaker (launcher/caretaker.ts) restarts a crashed container
      // in place, with back-off, following its `quarry.restart` label, and gives up on a crash loop.
      RestartPolicy: { Name: 'no' },
      ...(published.length > 0 && { PortBindings: Object.fromEntries(published.map((p) => [p, binding(p)])) }),
    },
    NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [spec.name, name, ...(spec.aliases ?? [])] } } },
  });
  try {
    await container.start();
  } catch (err) {
    await container.remove({ force: true }).catch(() => undefined);
    throw err;
  }
  return describe(await container.inspect());
}

/** The containers of a stack (or of every stack), running or not. */
export async function listContainers(docker: Docker, stack?: string, unit?: string): Promise<RunningContainer[]> {
  const label = [stack ? `${LABELS.stack}=${stack}` : LABELS.stack, ...(unit ? [`${LABELS.name}=${unit}`] : [])];
  const found = await docker.listContainers({ all: true, filters: { label } });
  const out = await Promise.all(found.map(async (c) => describe(await docker.getContainer(c.Id).inspect())));
  return out.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

/** Stops (with a grace period for in-flight work) and removes a container; gone already is fine. */
export async function removeContainer(docker: Docker, id: string, graceSeconds = 10): Promise<void> {
  const container = docker.getContainer(id);
  try {
    await container.stop({ t: graceSeconds });
  } catch (err) {
    const code = (err as { statusCode?: number }).statusCode;
    if (code !== 304 && code !== 404) throw err;
  }
  try {
    await container.remove({ force: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

export function describe(info: Docker.ContainerInspectInfo): RunningContainer {
  const labels = info.Config.Labels ?? {};
  const networks = Object.values(info.NetworkSettings.Networks ?? {});
  const hostPorts: Record<number, number> = {};
  for (const [key, bindings] of Object.entries(info.NetworkSettings.Ports ?? {})) {
    const bound = (bindings ?? []).find((b) => b.HostPort);
    if (bound) hostPorts[Number(key.split('/')[0])] = Number(bound.HostPort);
  }
  const slice = labels[LABELS.slice] ?? info.Name.replace(/^\//, '');
  const main = labels[LABELS.port] !== undefined ? Number(labels[LABELS.port]) : undefined;
  const hostPort = main !== undefined ? hostPorts[main] : Object.values(hostPorts)[0];
  const ip = networks.find((n) => n.IPAddress)?.IPAddress;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    stack: labels[LABELS.stack] ?? '',
    unit: labels[LABELS.name] ?? '',
    kind: (labels[LABELS.kind] ?? 'worker') as ContainerKind,
    n: Number(slice.split('.').pop()),
    state: info.State.Restarting ? 'restarting' : info.State.Status,
    ...(labels[LABELS.digest] && { digest: labels[LABELS.digest] }),
    ...(labels[LABELS.release] && { release: labels[LABELS.release] }),
    ...(labels[LABELS.member] !== undefined && { member: Number(labels[LABELS.member]) }),
    ...(ip && { ip }),
    ...(hostPort !== undefined && { hostPort }),
    hostPorts,
    memoryMb: Math.round((info.HostConfig.Memory ?? 0) / (1024 * 1024)),
    restart: restartedByDocker(info) ? 'docker' : parseRestartLabel(labels[LABELS.restart]),
  };
}

/** Whether docker's own restart policy restarts the container (one made before the caretaker did). */
export function restartedByDocker(info: Pick<Docker.ContainerInspectInfo, 'HostConfig'>): boolean {
  const name = info.HostConfig.RestartPolicy?.Name ?? '';
  return name !== '' && name !== 'no';
}
