import type { Etcd3 } from 'etcd3';
import type { StackSpec } from '../../compiler/index.js';
import { keys, type ElementMetrics, type PortMetrics } from '../../launcher/index.js';
import type { TopConnection, TopElement, TopInstance, TopView } from '../control.js';
import type { ControlParts } from './context.js';
import { readStacksWithin } from './etcd-read.js';

/** Figures older than this are stale: their instance has not reported lately (it reports about once a second). */
export const STALE_AFTER_MS = 5000;

/** How long `top` (and `ps`, for its RATE) wait for the metrics: past it, they answer without them. */
export const METRICS_READ_MS = 2000;

/** NiFi's back-pressure colours: under 60 % of the queue, 60–85 %, over 85 %. */
export function fillLevel(fill: number | null): TopConnection['level'] {
  if (fill === null) return null;
  if (fill > 0.85) return 'high';
  if (fill >= 0.6) return 'mid';
  return 'low';
}

/** `quarry top STACK`: the stack's last release's elements and connections, with the metrics etcd holds now. */
export async function topView(parts: ControlParts, stack: string, readMs = METRICS_READ_MS): Promise<TopView> {
  parts.store.check(stack);
  const latest = parts.store.latest(stack);
  const read = (await readMetrics(parts.ctx.etcd, [stack], readMs)).get(stack);
  const view = buildTopView(stack, latest?.spec, latest ? `v${latest.version}` : '-', read ?? [], Date.now());
  return read === undefined ? { ...view, unavailable: `the metrics could not be read from etcd within ${readMs / 1000} s` } : view;
}

/**
 * The records under each stack's `metrics/` prefix (one prefix read per stack, all at once),
 * bounded by `withinMs` as ps's care records are: a stack whose records did not come in time
 * (or could not be read) maps to undefined. A record that is no `ElementMetrics` is left out.
 */
export async function readMetrics(etcd: Etcd3, stacks: string[], withinMs: number): Promise<Map<string, ElementMetrics[] | undefined>> {
  const read = await readStacksWithin(etcd, stacks, keys.metrics, withinMs);
  return new Map([...read].map(([stack, values]) => [stack, values?.map(parseMetrics).filter((m): m is ElementMetrics => m !== undefined)]));
}

function parseMetrics(text: string): ElementMetrics | undefined {
  try {
    const m = JSON.parse(text) as Partial<ElementMetrics>;
    if (typeof m.element !== 'string' || typeof m.replica !== 'number' || typeof m.at !== 'string' || typeof m.rate !== 'number' ||
      typeof m.ports !== 'object' || m.ports === null) return undefined;
    return m as ElementMetrics;
  } catch {
    return undefined;
  }
}

/** Whether a record is fresh at `now`. */
export function isFresh(m: Pick<ElementMetrics, 'at'>, now: number, staleAfterMs = STALE_AFTER_MS): boolean {
  const at = Date.parse(m.at);
  return Number.isFinite(at) && now - at <= staleAfterMs;
}

/**
 * The view `quarry top` shows, from the stack's compiled spec and its instances' records
 * (pure). Each element and each connection is summed over the instances with fresh figures,
 * or, when none is fresh, over the stale ones (and marked stale). An element that reports but
 * is no longer in the spec (a release on its way out) is listed after the others.
 */
export function buildTopView(
  stack: string, spec: StackSpec | undefined, release: string, records: ElementMetrics[], now: number, staleAfterMs = STALE_AFTER_MS,
): TopView {
  const byElement = new Map<string, ElementMetrics[]>();
  for (const m of [...records].sort((a, b) => a.replica - b.replica)) {
    const list = byElement.get(m.element) ?? [];
    list.push(m);
    byElement.set(m.element, list);
  }
  const fresh = (m: ElementMetrics) => isFresh(m, now, staleAfterMs);
  /** The instances to sum over: the fresh ones, else the stale ones. */
  const counted = (name: string): { list: ElementMetrics[]; stale: boolean } => {
    const all = byElement.get(name) ?? [];
    const live = all.filter(fresh);
    return live.length > 0 ? { list: live, stale: false } : { list: all, stale: all.length > 0 };
  };

  const specElements = spec?.elements ?? [];
  const named = new Set(specElements.map((e) => e.name));
  const extra = [...byElement.keys()].filter((n) => !named.has(n)).sort();
  const elements: TopElement[] = [
    ...specElements.map((e) => ({ name: e.name, class: e.class, scale: e.scale })),
    ...extra.map((name) => ({ name, class: '-', scale: 0 })),
  ].map(({ name, class: cls, scale }) => {
    const { list, stale } = counted(name);
    const instances: TopInstance[] = (byElement.get(name) ?? []).map((m) => {
      const ageMs = Math.max(0, now - Date.parse(m.at));
      return {
        replica: m.replica, server: m.server, rate: m.rate, busy: m.busy, incarnation: m.incarnation, at: m.at,
        ageMs: Number.isFinite(ageMs) ? ageMs : -1, stale: !fresh(m), ports: m.ports,
      };
    });
    return {
      name, class: cls, scale,
      rate: list.length > 0 ? sum(list.map((m) => m.rate)) : null,
      busy: list.length > 0 ? sum(list.map((m) => m.busy)) / list.length : null,
      stale, instances,
    };
  });

  const connections: TopConnection[] = (spec?.connections ?? []).map((c) => {
    const receivers = counted(c.to.name);
    const senders = counted(c.from.name);
    const inPorts = receivers.list.map((m) => m.ports[c.to.port]).filter((p): p is PortMetrics => p !== undefined);
    const outPorts = senders.list.map((m) => m.ports[c.from.port]).filter((p): p is PortMetrics => p !== undefined);
    const rateOf = (p: PortMetrics) => (c.kind === 'query' ? p.queryRate ?? p.rate : p.rate);
    let rate: number | null = null;
    let rateAt: TopConnection['rateAt'] = null;
    let stale = false;
    if (inPorts.length > 0) [rate, rateAt, stale] = [sum(inPorts.map(rateOf)), 'in', receivers.stale];
    else if (outPorts.length > 0) [rate, rateAt, stale] = [sum(outPorts.map(rateOf)), 'out', senders.stale];

    // The fullest receiving instance: by fill where its limit is known, else by logs waiting.
    let queued: number | null = null;
    let queueLimit: number | null = null;
    let fill: number | null = null;
    for (const p of inPorts) {
      if (p.queued === undefined) continue;
      const f = p.queueLimit !== undefined && p.queueLimit > 0 ? Math.min(1, p.queued / p.queueLimit) : null;
      const fuller = queued === null || (f !== null && (fill === null || f > fill)) || (f === null && fill === null && p.queued > queued);
      if (fuller) [queued, queueLimit, fill] = [p.queued, p.queueLimit ?? null, f];
    }
    const p50 = max(inPorts.map((p) => p.p50Ms));
    const p99 = max(inPorts.map((p) => p.p99Ms));
    return {
      kind: c.kind, from: { ...c.from }, to: { ...c.to }, rate, rateAt, queued, queueLimit, fill, level: fillLevel(fill),
      backpressure: inPorts.some((p) => p.backpressure === true),
      ...(p50 !== undefined && { p50Ms: p50 }), ...(p99 !== undefined && { p99Ms: p99 }),
      stale,
    };
  });

  return { stack, at: new Date(now).toISOString(), release, staleAfterMs, elements, connections };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function max(xs: Array<number | undefined>): number | undefined {
  const known = xs.filter((x): x is number => typeof x === 'number');
  return known.length > 0 ? Math.max(...known) : undefined;
}
