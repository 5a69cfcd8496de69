/**
 * From the figures element instances publish (`ElementMetrics`, docs/runtime.md "Metrics in
 * etcd") to the readings the autoscale controller decides on (`MetricSample`, plan/autoscale.ts),
 * and a bounded history of those readings. Pure: HQ's controller loop and the runner's read the
 * figures and keep a `SampleHistory`; docs/autoscale.md, "Where the figures come from".
 *
 * The offered rate of an element is what its producers send it, measured where it is not held
 * back: the rate out of each producer instance's port that feeds it, divided by the share of the
 * interval that port was open (`1 − blocked`). A producer held back by backpressure half the time
 * and sending 100 logs/s offers 200 logs/s. (DS2 reads an operator's offered rate from its
 * upstream's true output rate in the same way.) An element no element feeds (a node pushes to it,
 * or its producers' figures are missing) is offered what it takes: its in ports' rates.
 */
import type { ElementSpec, StackSpec } from '../compiler/index.js';
import type { AutoscaleElement, AutoscaleInput, MetricSample } from './autoscale.js';
import type { Instruction } from './model.js';

/** One element instance's figures over its last interval: the fields of `ElementMetrics` the controller reads. */
export interface InstanceFigures {
  element: string;
  replica: number;
  incarnation: string;
  /** When they were read, ms since the epoch. */
  at: number;
  /** The interval the rates cover (0: a first reading, no rates yet). */
  intervalMs: number;
  /** Counters since the instance started. */
  processed: number;
  busySeconds: number;
  ports: Record<string, PortFigures>;
}

export interface PortFigures {
  kind: 'push' | 'query';
  dir: 'in' | 'out';
  /** Logs per second through the port over the interval. */
  rate: number;
  /** in: logs waiting to be handled. */
  queued?: number;
  /** out: the fraction of the interval the port was full (its sender waited), 0 to 1. */
  blocked?: number;
}

/** A push connection between two elements (`from.port -> to.port`). */
export interface FlowEdge {
  from: string;
  fromPort: string;
  to: string;
  toPort: string;
}

/** The least open share a blocked port is divided by: a port blocked all the time offers at most 20× what it sends. */
export const MIN_OPEN_SHARE = 0.05;
/** A producer's figures older than this (ms before `now`) say nothing about the load now. */
export const STALE_FIGURES_MS = 3_000;

/**
 * The readings of the elements in `sizes` (element → members it runs), one per instance whose
 * figures are given, each with the offered rate of its element divided evenly over the
 * element's members (so the sum over members is the element's offered rate, and a missing
 * member's share is missing: the controller does not shrink on partial figures).
 */
export function autoscaleSamples(edges: readonly FlowEdge[], figures: readonly InstanceFigures[], sizes: Readonly<Record<string, number>>,
  now: number): Map<string, MetricSample[]> {
  const byElement = new Map<string, InstanceFigures[]>();
  for (const f of figures) {
    let list = byElement.get(f.element);
    if (list === undefined) byElement.set(f.element, (list = []));
    list.push(f);
  }
  const out = new Map<string, MetricSample[]>();
  for (const [element, size] of Object.entries(sizes)) {
    const own = byElement.get(element) ?? [];
    const upstream = offeredByProducers(edges, byElement, element, now);
    const samples: MetricSample[] = [];
    for (const f of own) {
      let offered: number;
      if (upstream !== undefined) offered = upstream / Math.max(1, size);
      else if (f.intervalMs > 0) offered = inRate(f);
      else continue;
      samples.push({
        member: String(f.replica),
        at: f.at,
        processed: f.processed,
        busySeconds: f.busySeconds,
        offeredPerSecond: offered,
        queueDepth: queued(f),
        incarnation: f.incarnation,
      });
    }
    out.set(element, samples);
  }
  return out;
}

/** What the element's producers send it, unblocked; undefined when no producer instance has fresh figures. */
function offeredByProducers(edges: readonly FlowEdge[], byElement: ReadonlyMap<string, InstanceFigures[]>, element: string, now: number): number | undefined {
  let total = 0;
  let seen = false;
  for (const edge of edges) {
    if (edge.to !== element) continue;
    for (const p of byElement.get(edge.from) ?? []) {
      if (p.intervalMs <= 0 || now - p.at > STALE_FIGURES_MS) continue;
      const port = p.ports[edge.fromPort];
      if (port === undefined || port.dir !== 'out') continue;
      seen = true;
      const blocked = Math.min(1, Math.max(0, finite(port.blocked)));
      total += finite(port.rate) / Math.max(MIN_OPEN_SHARE, 1 - blocked);
    }
  }
  return seen ? total : undefined;
}

function inRate(f: InstanceFigures): number {
  let n = 0;
  for (const p of Object.values(f.ports)) if (p.dir === 'in' && p.kind === 'push') n += finite(p.rate);
  return n;
}

function queued(f: InstanceFigures): number {
  let n = 0;
  for (const p of Object.values(f.ports)) if (p.dir === 'in') n += finite(p.queued);
  return n;
}

const finite = (x: number | undefined) => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0);

/**
 * The readings of each element of one stack, newest last, kept for `keepMs` (enough for the
 * longest lull the controller looks back over). A reading whose instance and time are already
 * held is not added again (figures are read more often than they change).
 */
export class SampleHistory {
  private readonly byElement = new Map<string, MetricSample[]>();

  constructor(private readonly keepMs: number) {}

  /** Adds readings; each element's list is trimmed to the last `keepMs` before `now`. */
  add(samples: ReadonlyMap<string, readonly MetricSample[]>, now: number): void {
    for (const [element, fresh] of samples) {
      let list = this.byElement.get(element);
      if (list === undefined) this.byElement.set(element, (list = []));
      for (const s of fresh) {
        if (list.some((h) => h.member === s.member && h.at === s.at)) continue;
        list.push(s);
      }
      list.sort((a, b) => a.at - b.at);
      const from = now - this.keepMs;
      let drop = 0;
      while (drop < list.length && list[drop]!.at < from) drop++;
      if (drop > 0) list.splice(0, drop);
    }
  }

  samples(element: string): readonly MetricSample[] {
    return this.byElement.get(element) ?? [];
  }

  /** Forgets elements no longer autoscaled. */
  keepOnly(elements: ReadonlySet<string>): void {
    for (const name of [...this.byElement.keys()]) if (!elements.has(name)) this.byElement.delete(name);
  }
}

/** One stack's call of the controller, as HQ and the runner make it. */
export interface StackAutoscaleState {
  /** Members each element runs now (the current release's scales). */
  sizes: Readonly<Record<string, number>>;
  /** When each element's size last changed (ms); missing: unknown, every reading counts. */
  lastChange?: Readonly<Record<string, number>>;
  /** The readings so far (`SampleHistory`), fed with this call's figures first. */
  history: SampleHistory;
  now: number;
}

/** The elements of `spec` the controller sizes: load shards (`shard: {min, max}`), unless quarry.yml says `autoscale: {enabled: false}`. */
export function autoscaledElements(spec: StackSpec): ElementSpec[] {
  if (spec.autoscale?.enabled === false) return [];
  return spec.elements.filter((e) => e.shard !== undefined);
}

/** The push connections between two elements of `spec`: where offered rates are read. */
export function flowEdges(spec: StackSpec): FlowEdge[] {
  const elements = new Set(spec.elements.map((e) => e.name));
  return spec.connections
    .filter((c) => c.kind === 'push' && elements.has(c.from.name) && elements.has(c.to.name))
    .map((c) => ({ from: c.from.name, fromPort: c.from.port, to: c.to.name, toPort: c.to.port }));
}

/**
 * The controller's input for one stack: each load shard with its policy (the topology's
 * `shard`, its class's `cost`), size, last change and readings; the stack's cap
 * (`autoscale.max_instances`) and the element instances not autoscaled, which count against it.
 * Undefined when the stack has no element to size.
 */
export function stackAutoscaleInput(spec: StackSpec, state: StackAutoscaleState): AutoscaleInput | undefined {
  const sized = autoscaledElements(spec);
  if (sized.length === 0) return undefined;
  const costs = new Map(spec.classes.map((c) => [c.name, c.cost]));
  const names = new Set(sized.map((e) => e.name));
  const sizeOf = (e: ElementSpec) => state.sizes[e.name] ?? e.scale;
  const others = spec.elements.filter((e) => !names.has(e.name)).reduce((n, e) => n + sizeOf(e), 0);
  const elements: AutoscaleElement[] = sized.map((e) => ({
    element: e.name,
    policy: { min: e.shard!.min, max: e.shard!.max, cost: costs.get(e.class) ?? 0 },
    size: sizeOf(e),
    ...(state.lastChange?.[e.name] !== undefined && { lastChange: state.lastChange[e.name] }),
    samples: state.history.samples(e.name),
  }));
  const cap = spec.autoscale?.maxInstances;
  return { now: state.now, elements, ...(cap !== undefined && { cap }), others };
}

/**
 * Feeds one round of figures into `state.history` and returns the controller's input for the
 * stack (undefined: nothing to size). The history keeps what the longest lull looks back over.
 */
export function autoscaleRound(spec: StackSpec, figures: readonly InstanceFigures[], state: StackAutoscaleState): AutoscaleInput | undefined {
  const sized = autoscaledElements(spec);
  if (sized.length === 0) return undefined;
  const sizes: Record<string, number> = {};
  for (const e of sized) sizes[e.name] = state.sizes[e.name] ?? e.scale;
  state.history.add(autoscaleSamples(flowEdges(spec), figures, sizes, state.now), state.now);
  state.history.keepOnly(new Set(sized.map((e) => e.name)));
  return stackAutoscaleInput(spec, state);
}

/**
 * When each element's size last changed, from the releases (oldest first): the newest release
 * whose plan started, stopped or resized it (a DEPLOY starts its members again, so its figures
 * settle anew too). HQ's restart loses nothing: releases are on disk.
 */
export function lastSizeChanges(releases: readonly { at: string; plan: readonly Instruction[] }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of releases) {
    const at = Date.parse(r.at);
    if (!Number.isFinite(at)) continue;
    for (const step of r.plan) {
      const name = nameOf(step);
      if (name !== undefined && (step.op === 'DEPLOY' || step.op === 'SCALE' || step.op === 'ENSURE')) out[name] = at;
    }
  }
  return out;
}

function nameOf(step: Instruction): string | undefined {
  return 'element' in step && typeof step.element === 'string' ? step.element : 'node' in step && typeof step.node === 'string' ? step.node : undefined;
}
