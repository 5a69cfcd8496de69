import type { StackSpec } from '../compiler/index.js';
import { startTicker } from '../home/index.js';
import { elementMetrics, figuresOf, type StatsSnapshot } from '../launcher/index.js';
import {
  autoscaleDecisions, autoscaledElements, autoscaleRound, DEFAULT_AUTOSCALE, SampleHistory,
  type AutoscaleDecision, type AutoscaleOptions, type InstanceFigures,
} from '../plan/index.js';
import { readStats } from '../runtime/index.js';
import type { RunMember } from './resize.js';

/** `RunOptions.autoscale`: how a run sizes its load shards (`false`: it does not). */
export interface RunAutoscaleOptions {
  /** How often every element member's counters are read and the controller asked; default 1000 ms. */
  intervalMs?: number;
  /** The controller's settings (docs/autoscale.md, "The settings"); the defaults otherwise. */
  controller?: Partial<AutoscaleOptions>;
}

/** What the controller loop needs of the run. */
export interface AutoscaleHost {
  spec: StackSpec;
  /** The run's control key. */
  key: string;
  /** Every element member that runs now. */
  elementMembers(): RunMember[];
  /** Members each element runs now. */
  sizes(): Record<string, number>;
  /** Resizes one element (one at a time: the loop awaits it). */
  resize(element: string, from: number, to: number): Promise<void>;
  /** True once the run is stopping: nothing is resized then. */
  stopping(): boolean;
  /** A line of the run (`quarry: …`). */
  say(line: string): void;
}

export interface RunAutoscaler {
  /** When each autoscaled element last changed size (ms): its start, or its last resize. */
  readonly lastChange: Readonly<Record<string, number>>;
  /** Ends the loop; a round under way (a resize among it) is waited for. */
  stop(): Promise<void>;
}

/**
 * The run's autoscale loop, or undefined when the stack has nothing to size (no `shard:
 * {min, max}` element, or quarry.yml says `autoscale: {enabled: false}`).
 *
 * About once per `intervalMs` it reads every element member's counters over its control socket
 * (`readStats`, with the run's key), makes each one's figures as HQ's metrics relay does
 * (`elementMetrics` from this and the previous reading of the same instance, `figuresOf`), feeds
 * them to one `SampleHistory` (`autoscaleRound`) and asks the controller (`autoscaleDecisions`).
 * A `scale` decision is said as `autoscale: <reason>` and carried out (`host.resize`) before the
 * next round; a `keep` held back by the stack's cap is said once per change.
 */
export function startRunAutoscaler(host: AutoscaleHost, options: RunAutoscaleOptions = {}): RunAutoscaler | undefined {
  const { spec, say } = host;
  const sized = autoscaledElements(spec);
  if (sized.length === 0) return undefined;
  const intervalMs = options.intervalMs ?? 1000;
  const timeoutMs = Math.min(intervalMs, 2000);
  const controller = options.controller ?? {};
  const history = new SampleHistory((controller.maxLullMs ?? DEFAULT_AUTOSCALE.maxLullMs) + 60_000);
  const began = Date.now();
  const lastChange: Record<string, number> = Object.fromEntries(sized.map((e) => [e.name, began]));
  /** The previous reading of each member (`element.member`). */
  const last = new Map<string, StatsSnapshot>();
  /** Members whose counters could not be read (label → what was said), said again when they answer. */
  const unread = new Map<string, string>();
  /** The size each element was last said to be held at by the stack's cap: said once per change of size. */
  const capSaid = new Map<string, number>();

  say(`autoscale: sizing ${sized.map((e) => `${e.name} (${e.shard!.min}..${e.shard!.max}${e.shard!.by && e.shard!.by !== 'round-robin' ? `, ${e.shard!.by}` : ''})`).join(', ')} by load; ` +
    `figures every ${intervalMs / 1000} s`);

  async function read(member: RunMember): Promise<InstanceFigures | undefined> {
    const failed = unread.has(member.label);
    const control = await member.control?.(failed).catch(() => undefined);
    if (control === undefined) return undefined;
    let snapshot: StatsSnapshot;
    try {
      snapshot = { stats: await readStats(control, { key: host.key, timeoutMs }), at: Date.now() };
    } catch (err) {
      const message = ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
      if (unread.get(member.label) !== message && !closed && !host.stopping()) say(`autoscale: cannot read ${member.label}'s counters (${message}); skipped until it answers`);
      unread.set(member.label, message);
      return undefined;
    }
    if (failed) say(`autoscale: ${member.label} answers again`);
    unread.delete(member.label);
    const metrics = elementMetrics({ stack: spec.name, element: member.unit, replica: member.member, server: 'local' }, snapshot, last.get(member.label));
    last.set(member.label, snapshot);
    return figuresOf(metrics);
  }

  async function round(): Promise<void> {
    const members = host.elementMembers();
    const labels = new Set(members.map((m) => m.label));
    for (const label of [...last.keys()]) if (!labels.has(label)) last.delete(label);
    for (const label of [...unread.keys()]) if (!labels.has(label)) unread.delete(label);
    const figures = (await Promise.all(members.map((m) => read(m)))).filter((f): f is InstanceFigures => f !== undefined);
    if (closed || host.stopping()) return;
    const now = Date.now();
    const input = autoscaleRound(spec, figures, { sizes: host.sizes(), lastChange, history, now });
    if (input === undefined) return;
    let decisions: AutoscaleDecision[];
    try {
      decisions = autoscaleDecisions(input, controller);
    } catch (err) {
      say(`autoscale: ${(err as Error).message}`);
      return;
    }
    for (const d of decisions) {
      if (d.action === 'keep') {
        // Said once per size it is held at, not each second (its figures move every time).
        if (d.capBound === true && capSaid.get(d.element) !== d.from) {
          say(`autoscale: ${d.reason}`);
          capSaid.set(d.element, d.from);
        }
        continue;
      }
      if (closed || host.stopping()) return;
      say(`autoscale: ${d.reason}`);
      capSaid.delete(d.element);
      try {
        await host.resize(d.element, d.from, d.to);
      } catch (err) {
        // A run being stopped (Ctrl-C reaches the members too) makes a resize fail: not news then.
        if (!host.stopping()) say(`autoscale: resizing ${d.element} ${d.from} → ${d.to} failed: ${(err as Error).message}; it stays at ${host.sizes()[d.element] ?? d.from}`);
      }
      // The warm-up runs from the end of a change (or of its failure): a failure is not tried again at once.
      lastChange[d.element] = Date.now();
    }
  }

  let closed = false;
  const ticker = startTicker(round, intervalMs, (err) => say(`autoscale: internal error: ${(err as Error)?.stack ?? String(err)}`));

  return {
    lastChange,
    async stop() {
      closed = true;
      await ticker.stop();
    },
  };
}
