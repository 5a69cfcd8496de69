import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Etcd3, IKeyValue } from 'etcd3';
import { CONTROL_PORT, memberAlias } from '../plan/index.js';
import {
  CONTROL_KEY_ENV, endpointTargets, parseWiring, sameTargets, sendPeers,
  type EndpointRecordLike, type MemberRecords, type Target, type Wiring,
} from '../runtime/index.js';
import { followPrefix, type Follower } from './etcd-follow.js';
import { keys } from './etcd-keys.js';
import { LABELS, networkName } from './labels.js';

export interface PeerRelayOptions {
  etcd: Etcd3;
  /** This server's docker engine: the element containers whose producers the relay keeps pointed. */
  docker: Docker;
  log?: (line: string) => void;
  /** How long after a change to wait for more before sending (a deploy writes several keys); default 50 ms. */
  settleMs?: number;
  /** How often the element containers are listed again, besides docker's events; default 30 s. */
  rescanMs?: number;
  /** How long one control request may take; default 2000 ms. */
  timeoutMs?: number;
}

export interface PeerRelay {
  /** Stops following etcd and docker; a send under way is waited for. */
  stop(): Promise<void>;
}

/** One element container on this engine, as the relay knows it. */
interface Local {
  id: string;
  name: string;
  stack: string;
  /** docker's `State.StartedAt`: a restart (same container) starts over from its wiring. */
  startedAt: string;
  /** `tcp://<its address on its network>:<control port>`; undefined: it has no control socket. */
  control: string | undefined;
  key: string | undefined;
  /** Each out port's targets as the element has them now: its wiring at start, then what the relay sent. */
  ports: Map<string, Target[]>;
  failures: number;
  retryAt: number;
  said?: string;
}

/**
 * A running container of this engine that takes part in a topology (an element, or a node with
 * `ports:`): what its wiring, env and labels say of it. The relays that stand in for element
 * containers (peers, metrics) find them with `findElementContainers`.
 */
export interface ElementContainer {
  id: string;
  /** The container's name, `<stack>.<unit>.<n>`. */
  name: string;
  stack: string;
  /** Its element's name in the topology and its member number (its labels'; else its wiring's). */
  element: string;
  member: number;
  /** docker's `State.StartedAt`: a restart of the same container changes it. */
  startedAt: string;
  /** `tcp://<its address on its network>:<control port>`; undefined: it has no control socket. */
  control: string | undefined;
  /** Its control key (from its env; never to be logged); undefined: it has none. */
  key: string | undefined;
  wiring: Wiring;
}

export interface FindElementContainersOptions {
  /**
   * A container known already, returned as it is instead of being inspected again; undefined:
   * inspect it. (The peer relay inspects every one, to see restarts; the metrics relay reuses.)
   */
  reuse?: (id: string) => ElementContainer | undefined;
  /** Only the stacks this says yes to (by the container's `quarry.stack` label). */
  cares?: (stack: string) => boolean;
  /**
   * A container with a wiring that is left out, and why (`what`: `badwiring`, `nostack`), in
   * a line without prefix; called on every call it is found, for the caller to say once.
   */
  problem?: (id: string, what: string, line: string) => void;
}

/**
 * The running containers of this docker engine that take part in a topology (those with a
 * `QUARRY_WIRING`: services and plain nodes are left out), each described from its inspect:
 * its stack, element and member, its control socket's endpoint (its address on the stack's
 * network) and its control key. A container gone meanwhile is passed over; docker not
 * answering is an error.
 */
export async function findElementContainers(docker: Docker, options: FindElementContainersOptions = {}): Promise<ElementContainer[]> {
  const found = await docker.listContainers({ filters: { label: [LABELS.stack], status: ['running'] } });
  const elements: ElementContainer[] = [];
  for (const summary of found) {
    if (options.cares && !options.cares(summary.Labels?.[LABELS.stack] ?? '')) continue;
    const reused = options.reuse?.(summary.Id);
    if (reused) {
      elements.push(reused);
      continue;
    }
    let info: Docker.ContainerInspectInfo;
    try {
      info = await docker.getContainer(summary.Id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) continue; // gone meanwhile
      throw err;
    }
    if (!info.State.Running) continue;
    const element = describeElementContainer(info, options.problem ?? (() => undefined));
    if (element) elements.push(element);
  }
  return elements;
}

function describeElementContainer(info: Docker.ContainerInspectInfo, problem: (id: string, what: string, line: string) => void): ElementContainer | undefined {
  const name = info.Name.replace(/^\//, '');
  const env = new Map<string, string>();
  for (const line of info.Config.Env ?? []) {
    const at = line.indexOf('=');
    if (at > 0) env.set(line.slice(0, at), line.slice(at + 1));
  }
  const raw = env.get('QUARRY_WIRING');
  if (raw === undefined) return undefined;
  let wiring: Wiring;
  try {
    wiring = parseWiring(JSON.parse(raw), `${name}'s QUARRY_WIRING`);
  } catch (err) {
    problem(info.Id, 'badwiring', `${name}'s wiring cannot be read (${firstLine(err)}); left alone`);
    return undefined;
  }
  const labels = info.Config.Labels ?? {};
  const stack = wiring.stack ?? labels[LABELS.stack];
  if (stack === undefined || stack === '') {
    problem(info.Id, 'nostack', `${name} belongs to no stack; left alone`);
    return undefined;
  }
  const labelMember = Number(labels[LABELS.member]);
  const member = labels[LABELS.member] !== undefined && Number.isInteger(labelMember) && labelMember >= 0 ? labelMember : (wiring.member ?? 0);
  const key = env.get(CONTROL_KEY_ENV) || undefined;
  const networks = info.NetworkSettings.Networks ?? {};
  const ip = networks[networkName(stack)]?.IPAddress || Object.values(networks).find((n) => n.IPAddress)?.IPAddress;
  const controlPort = wiring.control !== undefined ? Number(/:(\d+)$/.exec(wiring.control)?.[1] ?? CONTROL_PORT) : undefined;
  return {
    id: info.Id, name, stack, element: labels[LABELS.name] || wiring.element, member, startedAt: info.State.StartedAt, key, wiring,
    control: ip && controlPort !== undefined ? `tcp://${ip}:${controlPort}` : undefined,
  };
}

/** What the relay knows of one stack's endpoint records. */
interface StackRecords {
  follower: Follower;
  /** Read whole at least once: until then nothing is sent to the stack's elements. */
  synced: boolean;
  revision: number;
  /** element → member → record. */
  records: Map<string, Map<number, EndpointRecordLike>>;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * Keeps the producers on this docker engine pointed at their consumers as etcd's endpoint
 * records say, since element containers cannot reach etcd themselves. It follows
 * `/quarry/stacks/<stack>/endpoints/` of every stack with an element container here, and the
 * containers that take part in the topology (elements, and nodes with `ports:`: their wiring and control key from their
 * env). For each out port of each of them it builds the targets from the records
 * (`endpointTargets`; a record without a server, one engine's, by the member's name on the
 * stack's network, `<unit>.<member>`, as the wiring has it) and, when they differ from what the element has (its wiring at start,
 * then what the relay sent it), sends them to its control socket. Changes that come together
 * are sent together; a failed send is tried again with a growing delay; a container that
 * restarts starts over from its wiring. The control key is never logged.
 */
export function startPeerRelay(options: PeerRelayOptions): PeerRelay {
  const { etcd, docker } = options;
  const log = options.log ?? (() => undefined);
  const settleMs = options.settleMs ?? 50;
  const rescanMs = options.rescanMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 2000;
  const locals = new Map<string, Local>();
  const stacks = new Map<string, StackRecords>();
  /** Things said once (a bad record, a container without a key), so that a rescan does not repeat them. */
  const said = new Set<string>();
  let closed = false;
  let dirty = false;
  let rescan = true;
  let working: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let retryAt = Infinity;
  let scanFailures = 0;
  let scanSaid: string | undefined;
  let events: Readable | undefined;

  const once = (what: string, line: string) => {
    if (said.has(what)) return;
    said.add(what);
    log(line);
  };

  /** Runs a pass (and first a scan of docker, when one is due) after the settle time; one at a time. */
  function schedule(scan = false): void {
    dirty = true;
    if (scan) rescan = true;
    if (working || closed) return;
    working = (async () => {
      await delay(settleMs);
      while (dirty && !closed) {
        dirty = false;
        if (rescan) {
          rescan = false;
          if (!(await scanSafely())) break;
        }
        await pass();
      }
    })().finally(() => {
      working = undefined;
      if (dirty && !closed) schedule();
    });
  }

  function retryIn(ms: number): void {
    const at = Date.now() + ms;
    if (retry !== undefined && retryAt <= at) return;
    clearTimeout(retry);
    retryAt = at;
    retry = setTimeout(() => {
      retry = undefined;
      retryAt = Infinity;
      schedule();
    }, ms);
    retry.unref();
  }

  async function scanSafely(): Promise<boolean> {
    try {
      await scan();
      if (scanSaid !== undefined) log('peers: docker answers again');
      scanFailures = 0;
      scanSaid = undefined;
      return true;
    } catch (err) {
      const message = firstLine(err);
      if (message !== scanSaid) log(`peers: cannot list the element containers (${message}); trying again until docker answers`);
      scanSaid = message;
      scanFailures += 1;
      rescan = true;
      retryIn(backoff(scanFailures));
      return false;
    }
  }

  /** The running element containers: new ones (and restarted ones) from their wiring; gone ones forgotten. */
  async function scan(): Promise<void> {
    const found = await findElementContainers(docker, { problem: (id, what, line) => once(`${what} ${id}`, `peers: ${line}`) });
    const seen = new Set<string>();
    for (const element of found) {
      seen.add(element.id);
      const known = locals.get(element.id);
      if (known && known.startedAt === element.startedAt) continue;
      const ports = new Map<string, Target[]>();
      for (const [port, wired] of Object.entries(element.wiring.ports)) if (wired.dir === 'out') ports.set(port, wired.targets);
      const { id, name, stack, startedAt, key, control } = element;
      locals.set(element.id, { id, name, stack, startedAt, ports, key, control, failures: 0, retryAt: 0 });
    }
    for (const id of [...locals.keys()]) {
      if (seen.has(id)) continue;
      locals.delete(id);
      for (const what of [...said]) if (what.includes(id)) said.delete(what);
    }
    const wanted = new Set([...locals.values()].map((l) => l.stack));
    for (const stack of wanted) if (!stacks.has(stack)) follow(stack);
    for (const [stack, known] of stacks) {
      if (wanted.has(stack)) continue;
      stacks.delete(stack);
      void known.follower.stop();
    }
  }

  function follow(stack: string): void {
    if (closed) return;
    const prefix = keys.endpoints(stack);
    const state: StackRecords = { synced: false, revision: 0, records: new Map(), follower: undefined as unknown as Follower };
    const set = (key: string, value: string | undefined) => {
      const rest = key.slice(prefix.length);
      const slash = rest.lastIndexOf('/');
      const element = rest.slice(0, slash);
      const member = rest.slice(slash + 1);
      if (slash <= 0 || !/^\d+$/.test(member)) return;
      let of = state.records.get(element);
      if (of === undefined) state.records.set(element, (of = new Map()));
      const parsed = value === undefined ? undefined : parseRecord(value);
      if (value !== undefined && parsed === undefined) once(`badrecord ${key} ${value}`, `peers: ${key} is not an endpoint record; taken as absent`);
      if (parsed === undefined) of.delete(Number(member));
      // One engine (no server: HQ's small mode): the member's stable name on the stack's network,
      // as the wiring names it, rather than the container's address, which a new container (a
      // deploy) or a restart changes while the name stays.
      else of.set(Number(member), parsed.server === undefined ? { host: memberAlias(element, Number(member)), ports: parsed.ports } : parsed);
    };
    const resync = async () => {
      const response = await etcd.getAll().prefix(prefix).exec();
      state.records.clear();
      for (const kv of response.kvs) set(kv.key.toString(), kv.value.toString());
      state.revision = Number(response.header.revision);
      state.synced = true;
      schedule();
      return state.revision;
    };
    const change = (kind: 'put' | 'delete', kv: IKeyValue) => {
      if (Number(kv.mod_revision) <= state.revision) return;
      set(kv.key.toString(), kind === 'put' ? kv.value.toString() : undefined);
      schedule();
    };
    stacks.set(stack, state);
    state.follower = followPrefix({ etcd, prefix, resync, change, name: 'peers', log });
  }

  /** Sends every out port whose targets the records change, to each element that can be told now. */
  async function pass(): Promise<void> {
    const now = Date.now();
    const sends: Promise<void>[] = [];
    for (const local of locals.values()) {
      const known = stacks.get(local.stack);
      if (!known?.synced) continue;
      const changes: [string, Target[]][] = [];
      for (const [port, current] of local.ports) {
        const next = endpointTargets(current, known.records as ReadonlyMap<string, MemberRecords>);
        if (!sameTargets(current, next)) changes.push([port, next]);
      }
      if (changes.length === 0) continue;
      if (local.key === undefined || local.control === undefined) {
        once(`nokey ${local.id} ${local.startedAt}`, `peers: ${local.name} has ${local.key === undefined ? 'no control key' : 'no control socket'}: it gets its new peers when it restarts`);
        continue;
      }
      if (local.retryAt > now) {
        retryIn(local.retryAt - now);
        continue;
      }
      sends.push(tell(local, changes));
    }
    await Promise.all(sends);
  }

  async function tell(local: Local, changes: [string, Target[]][]): Promise<void> {
    for (const [port, targets] of changes) {
      try {
        await sendPeers(local.control!, port, targets, { key: local.key!, timeoutMs });
      } catch (err) {
        if (locals.get(local.id) !== local) return; // gone or restarted meanwhile: the next pass sees it anew
        local.failures += 1;
        const wait = backoff(local.failures);
        local.retryAt = Date.now() + wait;
        const message = scrub(firstLine(err), local.key!);
        if (message !== local.said) log(`peers: cannot tell ${local.name} its peers for ${port} (${message}); trying again, next in ${wait} ms`);
        local.said = message;
        retryIn(wait);
        return;
      }
      local.ports.set(port, targets);
      local.failures = 0;
      local.retryAt = 0;
      local.said = undefined;
      log(`peers: ${local.name} ${port} now ${describeTargets(targets)}`);
    }
  }

  /** docker's container events: any start, death or removal of an element container is looked at. */
  async function watchEvents(): Promise<void> {
    let failures = 0;
    while (!closed) {
      try {
        const stream = (await docker.getEvents({
          filters: { type: ['container'], label: [LABELS.stack], event: ['start', 'restart', 'die', 'destroy'] },
        })) as unknown as Readable;
        if (closed) {
          stream.destroy();
          return;
        }
        events = stream;
        failures = 0;
        schedule(true); // what happened while not listening
        await new Promise<void>((resolve) => {
          stream.on('data', () => schedule(true));
          stream.once('end', resolve);
          stream.once('close', resolve);
          stream.once('error', resolve);
        });
        events = undefined;
      } catch {
        // docker away: the periodic rescan and the retries below cover it
      }
      if (closed) return;
      failures += 1;
      await delay(backoff(failures));
    }
  }

  const listening = watchEvents();
  const periodic = setInterval(() => schedule(true), rescanMs);
  periodic.unref();
  schedule(true);

  return {
    async stop() {
      closed = true;
      clearInterval(periodic);
      clearTimeout(retry);
      events?.destroy();
      // A scan under way may still start following a stack: wait for it, then stop them all.
      await working?.catch(() => undefined);
      await Promise.all([...stacks.values()].map((s) => s.follower.stop()));
      stacks.clear();
      await Promise.race([listening, delay(5000)]);
    },
  };
}

/** An endpoint record as the runtime needs it, or undefined when the value is not one. */
function parseRecord(value: string): (EndpointRecordLike & { server?: string }) | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  const r = parsed as { host?: unknown; ports?: unknown; server?: unknown } | null;
  if (r === null || typeof r !== 'object' || typeof r.host !== 'string' || r.host === '') return undefined;
  if (r.ports === null || typeof r.ports !== 'object' || Array.isArray(r.ports)) return undefined;
  return { host: r.host, ports: r.ports as Record<string, number>, ...(typeof r.server === 'string' && { server: r.server }) };
}

function describeTargets(targets: Target[]): string {
  return targets.map((t) => `${t.element}.${t.port} [${t.members.map((m) => `${m.id}=${m.endpoint}`).join(', ') || 'none'}]`).join('; ');
}

function backoff(failures: number): number {
  return Math.min(250 * 2 ** Math.min(failures - 1, 6), 10_000);
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

/** A message with the key taken out, should anything ever echo it. */
function scrub(message: string, key: string): string {
  return key === '' ? message : message.split(key).join('<key>');
}
