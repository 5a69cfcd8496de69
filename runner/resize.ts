import type { StackSpec } from '../compiler/index.js';
import { memberWiring, type Peers } from '../plan/index.js';
import { askControl, reshard, sendPeers, type ReshardConsumer, type ReshardProducer, type ReshardResult } from '../runtime/index.js';

/** One running member of a local run: a process or a container. */
export interface RunMember {
  unit: string;
  member: number;
  /** `name.member`, as its output is prefixed. */
  label: string;
  stop(graceMs: number): Promise<void>;
  /**
   * Where the runner reaches its control socket (a member in the topology); undefined: it has
   * none. `refresh`: look again (a container that restarted may have another address).
   */
  control?(refresh?: boolean): Promise<string | undefined>;
}

/** What a resize needs of the run it changes. */
export interface ResizeHost {
  spec: StackSpec;
  /** The run's control key. */
  key: string;
  /** Where members are reached now; its `members` follows `setSize`. */
  peers: Peers;
  setSize(element: string, members: number): void;
  /**
   * Starts member `member` of `element` wired as one of `members` (its targets as the run has
   * them now), registers it with the run (stop, restarts, output) and resolves once it is up.
   */
  startMember(element: string, member: number, members: number): Promise<RunMember>;
  /** Stops a member and takes it out of the run (its ports are given up). */
  stopMember(member: RunMember, graceMs: number): Promise<void>;
  /** The members of a unit that run now, in member order. */
  running(unit: string): RunMember[];
  /** A line of the run (`quarry: …`). */
  say(line: string): void;
}

/** How long one control request (peers) may take. */
const CONTROL_TIMEOUT_MS = 5_000;

/** One producer port of an element's members: the unit, member and port told new peers. */
interface ProducerPort {
  member: RunMember;
  control: string;
  port: string;
  /** `<element>.<in port>` of each connection from this port to the element. */
  targets: string[];
  push: boolean;
}

/**
 * Every member of every unit with an out port connected to `element` (elements, and nodes with
 * `ports:`), one entry per member and out port, with its control endpoint.
 */
async function producerPorts(host: ResizeHost, element: string): Promise<ProducerPort[]> {
  const byKey = new Map<string, ProducerPort>();
  for (const c of host.spec.connections) {
    if (c.to.name !== element) continue;
    for (const member of host.running(c.from.name)) {
      const control = await member.control?.();
      if (control === undefined) continue;
      const key = `${member.label}/${c.from.port}`;
      let p = byKey.get(key);
      if (p === undefined) byKey.set(key, (p = { member, control, port: c.from.port, targets: [], push: false }));
      p.targets.push(`${element}.${c.to.port}`);
      if (c.kind === 'push') p.push = true;
    }
  }
  return [...byKey.values()];
}

/** The push in ports of `element` something is connected to. */
function pushInPorts(spec: StackSpec, element: string): string[] {
  return [...new Set(spec.connections.filter((c) => c.kind === 'push' && c.to.name === element).map((c) => c.to.port))];
}

async function consumersOf(host: ResizeHost, element: string, members: RunMember[]): Promise<ReshardConsumer[]> {
  const out: ReshardConsumer[] = [];
  const ports = pushInPorts(host.spec, element);
  for (const member of members) {
    const control = await member.control?.();
    if (control === undefined) continue;
    for (const port of ports) out.push({ control, port, name: member.label });
  }
  return out;
}

/**
 * Tells each producer port the targets its unit's wiring has now (`peers` as the run has it),
 * one request each, all at once. A producer that does not answer is said and left: a process
 * that restarts gets the current wiring in its env, a container is told again after its restart.
 */
async function tellProducers(host: ResizeHost, producers: ProducerPort[]): Promise<string[]> {
  const failed: string[] = [];
  await Promise.all(producers.map(async (p) => {
    const wired = memberWiring(host.spec, p.member.unit, p.member.member, host.peers).ports[p.port];
    if (wired?.dir !== 'out') return;
    try {
      await sendPeers(p.control, p.port, wired.targets, { key: host.key, timeoutMs: CONTROL_TIMEOUT_MS });
    } catch (err) {
      failed.push(`${p.member.label} ${p.port} (${firstLine(err)})`);
    }
  }));
  return failed;
}

/** What a resize did, for its line. */
export interface ResizeOutcome {
  started: string[];
  stopped: string[];
  /** The barrier's figures, when one was used. */
  reshard?: ReshardResult;
  /** Producers that could not be told (`label port (why)`). */
  untold: string[];
}

/**
 * Resizes one element of a running stack from `from` members to `to`:
 *
 * - **grow**: starts members `from … to−1` (wired as `to` members), waits until they are up,
 *   then tells the producers the new member list;
 * - **shrink**: tells the producers first (the leaving members are no longer targets), then
 *   stops the members that leave.
 *
 * A `by: hash:<field>` shard changes behind the runtime's re-shard barrier (`reshard`: the
 * producers held, the consumers' unstarted batches shed back to them, nothing in flight), with
 * every member, old and new, as its consumers, so that no key is handled by two members at
 * once; a round-robin shard's shrink behind the same barrier with the leaving members as
 * consumers (they have nothing queued when they stop); its growth needs the new peers only.
 * A member that does not start undoes the growth (the members started are stopped) and throws.
 */
export async function resizeElement(host: ResizeHost, element: string, from: number, to: number): Promise<ResizeOutcome> {
  const spec = host.spec;
  const by = spec.elements.find((e) => e.name === element)?.shard?.by ?? 'round-robin';
  const hashed = by.startsWith('hash:');
  const outcome: ResizeOutcome = { started: [], stopped: [], untold: [] };

  if (to > from) {
    const fresh: RunMember[] = [];
    const results = await Promise.allSettled(Array.from({ length: to - from }, (_, i) => host.startMember(element, from + i, to)
      .then((m) => { fresh.push(m); return m; })));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined) {
      await Promise.all(fresh.map((m) => host.stopMember(m, 0)));
      throw failure.reason;
    }
    outcome.started = fresh.sort((a, b) => a.member - b.member).map((m) => m.label);
    // Up is not yet answering in a container (up there is "running for a second"): the
    // barrier sheds the new members' queues too, so each one's control socket must answer.
    await Promise.all(fresh.map((m) => controlAnswers(host, m)));
  }

  const all = host.running(element);
  const leaving = all.filter((m) => m.member >= to);
  const producers = await producerPorts(host, element);
  const change = async () => {
    host.setSize(element, to);
    outcome.untold = await tellProducers(host, producers);
  };
  const pushing = producers.filter((p) => p.push);
  if (pushing.length > 0 && (hashed || to < from)) {
    const consumers = await consumersOf(host, element, hashed ? all : leaving);
    const held: ReshardProducer[] = pushing.flatMap((p) => p.targets.map((target) => ({ control: p.control, port: p.port, target, name: p.member.label })));
    let changed = false;
    try {
      outcome.reshard = await reshard(held, consumers, async () => { changed = true; await change(); }, { key: host.key });
    } catch (err) {
      host.say(`autoscale: the re-shard barrier of ${element} failed (${firstLine(err)}); ${changed ? 'its producers were told' : 'telling its producers'} the new members without it`);
      if (!changed) await change();
    }
  } else {
    await change();
  }

  for (const m of leaving) {
    await host.stopMember(m, 10_000);
    outcome.stopped.push(m.label);
  }
  return outcome;
}

/** Waits until a member's control socket answers (at most `withinMs`; then the resize goes on without it). */
async function controlAnswers(host: ResizeHost, member: RunMember, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (let refresh = false; ; refresh = true) {
    const control = await member.control?.(refresh);
    if (control === undefined) return;
    try {
      await askControl(control, { op: 'endpoints' }, { key: host.key, timeoutMs: 1000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        host.say(`autoscale: ${member.label}'s control socket does not answer (${firstLine(err)}); going on without it`);
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Tells a member that restarted in place (a container: its env, and so its wiring, is the one
 * it first started with) the targets its out ports to `elements` have now, trying until its
 * control socket answers (at most `withinMs`).
 */
export async function retellProducer(host: ResizeHost, member: RunMember, elements: ReadonlySet<string>, withinMs = 30_000): Promise<void> {
  const ports = [...new Set(host.spec.connections.filter((c) => c.from.name === member.unit && elements.has(c.to.name)).map((c) => c.from.port))];
  if (ports.length === 0) return;
  const deadline = Date.now() + withinMs;
  for (let refresh = true; ; refresh = false) {
    const control = await member.control?.(refresh);
    if (control === undefined) return;
    const left: string[] = [];
    for (const port of ports) {
      const wired = memberWiring(host.spec, member.unit, member.member, host.peers).ports[port];
      if (wired?.dir !== 'out') continue;
      try {
        await sendPeers(control, port, wired.targets, { key: host.key, timeoutMs: 2_000 });
      } catch {
        left.push(port);
      }
    }
    if (left.length === 0) {
      host.say(`autoscale: told ${member.label} (restarted with the wiring it first had) the members of ${[...elements].sort().join(', ')} now`);
      return;
    }
    if (Date.now() > deadline) {
      host.say(`autoscale: could not tell ${member.label} (restarted) its members now; its ${left.join(', ')} keeps the members it started with`);
      return;
    }
    ports.splice(0, ports.length, ...left);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}
