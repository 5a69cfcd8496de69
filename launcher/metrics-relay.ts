import type Docker from 'dockerode';
import type { Etcd3, Lease } from 'etcd3';
import { startTicker } from '../home/index.js';
import type { InstanceFigures } from '../plan/index.js';
import { readStats, type ElementStats } from '../runtime/index.js';
import { keys, type ElementMetrics, type PortMetrics } from './etcd-keys.js';
import { findElementContainers, type ElementContainer } from './peer-relay.js';
import { within } from './within.js';

export interface MetricsRelayOptions {
  /** Where the records go, and whence they are deleted when their container goes. */
  etcd: Etcd3;
  /** This server's docker engine: the element containers whose figures the relay publishes. */
  docker: Docker;
  /** The server id put in records (`local` in small mode). */
  server: string;
  /**
   * The lease the records are put under (HQ's, in small mode). Give this or `put`.
   */
  lease?: Lease;
  /**
   * Puts one record under the caller's lease (the agent: its lease of the moment; nothing while
   * it has none). Give this or `lease`.
   */
  put?: (key: string, value: string) => Promise<unknown> | void;
  /** Only the stacks this says yes to (HQ in small mode: its own, not those of `quarry run`). */
  cares?: (stack: string) => boolean;
  /** How often each element instance is read and its record put; default 1000 ms. */
  intervalMs?: number;
  /** How long one instance may take to answer; default the interval, at most 2000 ms. */
  timeoutMs?: number;
  /** One line per change of state (docker away and back, an instance that stops answering); never one per tick. */
  log?: (line: string) => void;
}

export interface MetricsRelay {
  /** Stops reading; a tick under way is waited for; the records it put are deleted. */
  stop(): Promise<void>;
}

/** One reading of an element instance's counters, and when it was taken. */
export interface StatsSnapshot {
  stats: ElementStats;
  /** When the answer came (ms since the epoch). */
  at: number;
}

/** Who an instance is, in its record. */
export interface MetricsIdentity {
  stack: string;
  element: string;
  replica: number;
  server: string;
}

/** What the relay keeps of one element container. */
interface Watched {
  container: ElementContainer;
  key: string;
  last?: StatsSnapshot;
  /** A failure said (its message): not said again until it answers. */
  said?: string;
}

const rate = (delta: number, seconds: number) => (seconds > 0 && delta > 0 ? delta / seconds : 0);

/**
 * One element instance's record from its counters now and, when it is the same incarnation,
 * at the previous reading: rates per second over the real interval between the two (the
 * element's own clock, its uptime), busy the growth of its handler time over that interval
 * (0 to 1). A first reading, or one of a new incarnation (a restart), has rates 0 and
 * `intervalMs` 0: the next reading has them.
 */
export function elementMetrics(who: MetricsIdentity, now: StatsSnapshot, before?: StatsSnapshot): ElementMetrics {
  const prev = before !== undefined && before.stats.incarnation === now.stats.incarnation ? before.stats : undefined;
  let intervalMs = 0;
  if (prev) {
    const byUptime = now.stats.uptimeMs - prev.uptimeMs;
    intervalMs = byUptime > 0 ? byUptime : Math.max(0, now.at - before!.at);
  }
  const seconds = intervalMs / 1000;
  const ports: Record<string, PortMetrics> = {};
  let processed = 0;
  let processedBefore = 0;
  for (const [name, port] of Object.entries(now.stats.ports)) {
    const was = prev?.ports[name];
    const count = (p: typeof port) => (port.dir === 'in' ? p.logsIn : p.logsOut) ?? 0;
    const total = count(port);
    const metrics: PortMetrics = { kind: port.kind, dir: port.dir, rate: was ? rate(total - count(was), seconds) : 0, total };
    if (port.dir === 'in') {
      processed += port.logsIn ?? 0;
      processedBefore += was?.logsIn ?? port.logsIn ?? 0;
      metrics.queued = port.queued ?? 0;
      if (port.queueLimit !== undefined) metrics.queueLimit = port.queueLimit;
      metrics.backpressure = port.backpressure ?? false;
    }
    if (port.dir === 'out' && port.kind === 'push') {
      // The share of the interval the port was full (its sender waited): what the autoscaler
      // divides the rate by to read the load offered downstream.
      const blockedMs = (port.blockedMs ?? 0) - (was?.blockedMs ?? port.blockedMs ?? 0);
      metrics.blocked = was && intervalMs > 0 ? Math.min(1, Math.max(0, blockedMs / intervalMs)) : 0;
    }
    if (port.kind === 'query') {
      metrics.queryRate = was ? rate((port.queries ?? 0) - (was.queries ?? 0), seconds) : 0;
      if (port.latencyP50Ms !== undefined) metrics.p50Ms = port.latencyP50Ms;
      if (port.latencyP99Ms !== undefined) metrics.p99Ms = port.latencyP99Ms;
    }
    ports[name] = metrics;
  }
  const busyMs = now.stats.busyMs ?? 0;
  const busy = prev && intervalMs > 0 ? Math.min(1, Math.max(0, (busyMs - (prev.busyMs ?? 0)) / intervalMs)) : 0;
  return {
    ...who,
    incarnation: now.stats.incarnation,
    at: new Date(now.at).toISOString(),
    intervalMs,
    processed,
    busySeconds: busyMs / 1000,
    busy,
    rate: prev ? rate(processed - processedBefore, seconds) : 0,
    ports,
  };
}

/** The figures the autoscale controller reads (plan's `InstanceFigures`) of one record. */
export function figuresOf(m: ElementMetrics): InstanceFigures {
  const at = Date.parse(m.at);
  return {
    element: m.element, replica: m.replica, incarnation: m.incarnation, at: Number.isFinite(at) ? at : 0, intervalMs: m.intervalMs,
    processed: m.processed, busySeconds: m.busySeconds,
    ports: Object.fromEntries(Object.entries(m.ports).map(([name, p]) => [name, {
      kind: p.kind, dir: p.dir, rate: p.rate, ...(p.queued !== undefined && { queued: p.queued }), ...(p.blocked !== undefined && { blocked: p.blocked }),
    }])),
  };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * Publishes the figures of every element instance on this docker engine, since element
 * containers cannot reach etcd themselves. Every interval it finds the element containers
 * (the peer relay's discovery: `findElementContainers`), reads each one's counters through its
 * control socket (in parallel, each within `timeoutMs`; one that does not answer is skipped
 * this time), makes its `ElementMetrics` from this reading and the previous one of the same
 * incarnation, and puts it at `/quarry/stacks/<stack>/metrics/<element>/<replica>` under the
 * caller's lease. A container that goes has its key deleted. The control key is never logged.
 */
export function startMetricsRelay(options: MetricsRelayOptions): MetricsRelay {
  const { etcd, docker, server } = options;
  const log = options.log ?? (() => undefined);
  const intervalMs = options.intervalMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? Math.min(intervalMs, 2000);
  const put = options.put ?? (options.lease && ((k: string, v: string) => options.lease!.put(k).value(v)));
  if (!put) throw new Error('startMetricsRelay: give a lease or a put function: the records go under a lease');
  const watched = new Map<string, Watched>();
  /** Keys put and not deleted since. */
  const written = new Set<string>();
  let closed = false;
  let dockerSaid: string | undefined;
  let putSaid: string | undefined;
  const said = new Set<string>();
  const once = (what: string, line: string) => {
    if (said.has(what)) return;
    said.add(what);
    log(line);
  };

  async function tick(): Promise<void> {
    let found: ElementContainer[];
    try {
      found = await within(findElementContainers(docker, {
        // A known container is not inspected again; one that stopped answering is (it may have a new address).
        reuse: (id) => {
          const w = watched.get(id);
          return w && w.said === undefined ? w.container : undefined;
        },
        ...(options.cares && { cares: options.cares }),
        problem: (id, what, line) => once(`${what} ${id}`, `metrics: ${line}`),
      }), Math.max(timeoutMs * 5, 5000), 'docker');
      if (dockerSaid !== undefined) log('metrics: docker answers again');
      dockerSaid = undefined;
    } catch (err) {
      const message = firstLine(err);
      if (message !== dockerSaid) log(`metrics: cannot list the element containers (${message}); trying again each interval`);
      dockerSaid = message;
      return;
    }
    const seen = new Set<string>();
    for (const container of found) {
      seen.add(container.id);
      const known = watched.get(container.id);
      const key = keys.elementMetrics(container.stack, container.element, container.member);
      if (known) known.container = container;
      else watched.set(container.id, { container, key });
    }
    const gone = [...watched].filter(([id]) => !seen.has(id));
    for (const [id] of gone) {
      watched.delete(id);
      for (const what of [...said]) if (what.includes(id)) said.delete(what);
    }
    // A key another container still fills (a deploy's new one, same member) is left to it.
    const live = new Set([...watched.values()].map((w) => w.key));
    const deletions = gone.map(([, w]) => w.key).filter((key) => !live.has(key) && written.delete(key)).map((key) => remove(key));

    await Promise.all([...deletions, ...[...watched.values()].map((w) => publish(w))]);
  }

  async function publish(w: Watched): Promise<void> {
    const { container } = w;
    if (container.control === undefined || container.key === undefined) {
      once(`nocontrol ${container.id}`, `metrics: ${container.name} has ${container.key === undefined ? 'no control key' : 'no control socket'}: no figures from it`);
      return;
    }
    let stats: ElementStats;
    try {
      stats = await readStats(container.control, { key: container.key, timeoutMs });
    } catch (err) {
      const message = scrub(firstLine(err), container.key);
      if (message !== w.said) log(`metrics: cannot read ${container.name}'s counters (${message}); skipped until it answers`);
      w.said = message;
      return;
    }
    if (w.said !== undefined) log(`metrics: ${container.name} answers again`);
    w.said = undefined;
    const now: StatsSnapshot = { stats, at: Date.now() };
    const record = elementMetrics({ stack: container.stack, element: container.element, replica: container.member, server }, now, w.last);
    w.last = now;
    if (closed || watched.get(container.id) !== w) return;
    try {
      written.add(w.key);
      await put!(w.key, JSON.stringify(record));
      if (putSaid !== undefined) log('metrics: etcd takes the figures again');
      putSaid = undefined;
    } catch (err) {
      const message = firstLine(err);
      if (message !== putSaid) log(`metrics: cannot put ${w.key} (${message}); trying again each interval`);
      putSaid = message;
    }
  }

  async function remove(key: string): Promise<void> {
    await etcd.delete().key(key).catch((err: unknown) => log(`metrics: cannot delete ${key} (${firstLine(err)})`));
  }

  // Ticks one after another, each `intervalMs` after the last one began (or at once when it took longer).
  const ticker = startTicker(tick, intervalMs, (err) => log(`metrics: internal error: ${(err as Error)?.stack ?? String(err)}`), { firstAfterMs: 0 });

  return {
    async stop() {
      closed = true;
      await Promise.race([ticker.stop(), delay(timeoutMs + 5000)]);
      const keysLeft = [...written];
      written.clear();
      watched.clear();
      await Promise.race([Promise.all(keysLeft.map((key) => remove(key))), delay(3000)]);
    },
  };
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

/** A message with the key taken out, should anything ever echo it. */
function scrub(message: string, key: string): string {
  return key === '' ? message : message.split(key).join('<key>');
}
