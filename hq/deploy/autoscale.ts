import { startTicker } from '../../home/index.js';
import type { Progress } from '../../launcher/index.js';
import { figuresOf } from '../../launcher/index.js';
import {
  autoscaleDecisions, autoscaleRound, autoscaledElements, DEFAULT_AUTOSCALE, lastSizeChanges, SampleHistory,
  type AutoscaleDecision,
} from '../../plan/index.js';
import type { AutoscaleLoopOptions, ControlParts } from './context.js';

export type { AutoscaleLoopOptions };
import type { ReleaseRecord } from './records.js';
import { scaleRequest } from './requests.js';
import { readMetrics } from './top.js';

export interface Autoscaler {
  /** Runs one round now (tests): reads, decides, applies. Resolves with the decisions made per stack. */
  tick(): Promise<Map<string, AutoscaleDecision[]>>;
  stop(): Promise<void>;
}

/** How long one round may wait for a stack's metrics records. */
const METRICS_WITHIN_MS = 2000;

interface StackState {
  history: SampleHistory;
  /** Per element, the last line said that was not a plain keep (a cap that binds, an error), not said again until it changes. */
  said: Map<string, string>;
  /** When each element's size last changed, as of release `version`. */
  changes?: { version: number; at: Record<string, number> };
}

/**
 * The autoscale controller's loop in HQ (issue 17; docs/autoscale.md): every interval, for each
 * stack whose last release has load shards (`shard: {min, max}`), reads its instances' figures
 * (`/quarry/stacks/<s>/metrics/`, under the servers' leases), feeds them to the stack's history,
 * and asks `autoscaleDecisions`. A change of size becomes a release like `quarry scale`'s,
 * with the reason `autoscale` and a description naming each change (`autoscale work 1 → 4`);
 * its decision line goes to HQ's log first. A stack whose lock is held (a push, a scale, a heal)
 * is not decided on in that round: its figures still count. Rounds never overlap; an error in
 * one stack is logged once per kind and does not stop the loop.
 */
export function startAutoscaler(parts: ControlParts, options: AutoscaleLoopOptions = {}): Autoscaler {
  const intervalMs = options.intervalMs ?? 1000;
  const controller = options.controller ?? {};
  const keepMs = (controller.maxLullMs ?? DEFAULT_AUTOSCALE.maxLullMs) + (controller.windowMs ?? DEFAULT_AUTOSCALE.windowMs) + 60_000;
  const states = new Map<string, StackState>();
  const { ctx, store, locks } = parts;
  let stopped = false;

  const stateOf = (stack: string): StackState => {
    let s = states.get(stack);
    if (s === undefined) states.set(stack, (s = { history: new SampleHistory(keepMs), said: new Map() }));
    return s;
  };

  const round = async (): Promise<Map<string, AutoscaleDecision[]>> => {
    const made = new Map<string, AutoscaleDecision[]>();
    const candidates = store.stacks().flatMap((stack) => {
      const last = store.latest(stack);
      return last && autoscaledElements(last.spec).length > 0 ? [{ stack, last }] : [];
    });
    for (const stack of [...states.keys()]) if (!candidates.some((c) => c.stack === stack)) states.delete(stack);
    if (candidates.length === 0) return made;
    const metrics = await readMetrics(ctx.etcd, candidates.map((c) => c.stack), METRICS_WITHIN_MS);
    for (const { stack, last } of candidates) {
      if (stopped) break;
      const records = metrics.get(stack);
      if (records === undefined) continue;
      const state = stateOf(stack);
      const now = Date.now();
      try {
        if (state.changes?.version !== last.version) state.changes = { version: last.version, at: lastSizeChanges(store.releases(stack)) };
        const input = autoscaleRound(last.spec, records.map(figuresOf), {
          sizes: sizesOf(last), lastChange: state.changes.at, history: state.history, now,
        });
        if (input === undefined || locks.busy(stack)) continue;
        const decisions = autoscaleDecisions(input, controller);
        made.set(stack, decisions);
        await apply(stack, decisions, state);
      } catch (err) {
        say(state, '$error', `${stack}: autoscale: ${(err as Error).message}`);
      }
    }
    return made;
  };

  const say = (state: StackState, key: string, line: string) => {
    if (state.said.get(key) === line) return;
    state.said.set(key, line);
    ctx.log(line);
  };

  const apply = async (stack: string, decisions: AutoscaleDecision[], state: StackState) => {
    const changes: Record<string, number> = {};
    for (const d of decisions) {
      if (d.action === 'scale') {
        changes[d.element] = d.to;
        state.said.delete(d.element);
        ctx.log(`${stack}: autoscale: ${d.reason}`);
      } else if (d.capBound) {
        // A cap that binds is news once, not every second.
        say(state, d.element, `${stack}: autoscale: ${d.reason.replace(/offered [^;]*; /, '')}`);
      }
    }
    if (Object.keys(changes).length === 0) return;
    const description = `autoscale ${decisions.filter((d) => d.action === 'scale').map((d) => `${d.element} ${d.from} → ${d.to}`).join(', ')}`;
    try {
      await scaleRequest(parts, stack, changes, logProgress(ctx.log, stack), { reason: 'autoscale', description });
    } catch (err) {
      ctx.log(`${stack}: autoscale: ${description} failed: ${(err as Error).message}`);
    }
  };

  const ticker = startTicker(round, intervalMs, (err) => ctx.log(`autoscale: ${(err as Error).message}`));

  return {
    async tick() {
      await ticker.idle();
      return round();
    },
    async stop() {
      stopped = true;
      await ticker.stop();
    },
  };
}

/** Members each unit runs in a release. */
function sizesOf(record: ReleaseRecord): Record<string, number> {
  return Object.fromEntries(record.current.units.map((u) => [u.name, u.scale]));
}

/** A task's progress as HQ log lines about the stack. */
function logProgress(log: (line: string) => void, stack: string): Progress {
  return {
    step: (line) => log(`${stack}: ${line}`),
    info: (line) => log(`${stack}:   ${line}`),
    error: (line) => log(`${stack}: ! ${line}`),
  };
}
