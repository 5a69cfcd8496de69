import { StackExecutor, keys, type GridHealing, type Progress, type ServerRow } from '../../launcher/index.js';
import { healPlan, withEnv, type HealAction } from '../../plan/index.js';
import { QuarryError } from '../../errors/index.js';
import { BadRequestError } from '../errors.js';
import { executorContext, type ControlParts } from './context.js';

/** The busy mark of the round's retries (never a server's id: ids have no spaces). */
const RETRY = 'retry pending';

/** How often the heal loop looks at the grid. */
export const HEAL_INTERVAL_MS = 1000;

export interface Healer {
  /** One round of the loop: look, plan (plan/heal.ts), act. Rounds never overlap. */
  round(): Promise<HealAction[]>;
  /** `quarry servers drain ID [--remove]`: every container moves elsewhere, healthy and routed before the old one stops. */
  drain(id: string, remove: boolean, progress: Progress): Promise<ServerRow>;
  /** `quarry servers undrain ID`: the server takes containers again. */
  undrain(id: string, progress: Progress): Promise<ServerRow>;
  stop(): Promise<void>;
}

/**
 * HQ's side of the reconcile loop (DESIGN.md) on a grid: every second what HQ sees
 * of the servers (their agents' leases, their engines, their drains) goes into `healPlan`, and
 * what it returns is carried out. A lost server's stacks are converged to their release (their
 * missing members start elsewhere, routes, endpoints and env follow), then the server is
 * removed through its provider; a drain moves each stack's containers off its server. Each
 * stack's part is a task under the stack's lock, recorded like a push's, so a kill -9 of HQ in
 * the middle is finished by the next HQ (hq/deploy/recover.ts converges it).
 */
export function startHealer(parts: ControlParts, options: { intervalMs?: number } = {}): Healer | undefined {
  const healing = parts.cluster.healing();
  if (!healing) return undefined;
  const { ctx } = parts;
  const say = (text: string) => ctx.log(`heal: ${text}`);
  const loud: Progress = { step: say, info: say, error: say };
  const agents = ctx.agentEtcd !== undefined;
  /** Servers with a drain or a loss being carried out (by the loop or by a caller). */
  const busy = new Set<string>();
  /** Stacks a loss left to converge, with why; one that failed is tried again later, every time twice as late (at most a minute). */
  const pending = new Map<string, { description: string; next: number; delayMs: number }>();
  /** Lost servers not yet removed (their removal failed: tried again each round). */
  const unforgotten = new Set<string>();
  /** Stacks being converged now (by a loss or by the round's retry). */
  const converging = new Set<string>();
  let stopped = false;
  let running: Promise<HealAction[]> | undefined;

  async function look(grid: GridHealing): Promise<HealAction[]> {
    const sights = await grid.sight();
    // The engines of servers whose lease is gone are probed at once, side by side.
    await Promise.all(sights.filter((s) => agents && !s.agent).map(async (s) => {
      s.engine = await grid.probe(s.id);
      grid.noteProbe(s.id, s.engine);
    }));
    for (const s of sights) if (s.agent) grid.noteProbe(s.id, true);
    return healPlan(sights, { agents });
  }

  async function act(action: HealAction): Promise<void> {
    if (action.op === 'probe' || action.op === 'drained' || busy.has(action.server)) return;
    busy.add(action.server);
    try {
      if (action.op === 'lose') await lose(action.server, action.stacks, action.reason);
      else if (action.op === 'drain') await moveOff(action.server, action.stacks, loud);
      else if (action.op === 'retire') {
        // A drain's caller may have removed it meanwhile.
        if ((await healing!.sight()).some((x) => x.id === action.server && x.draining)) await parts.cluster.removeServer(action.server, loud);
      }
    } catch (err) {
      say(`${action.op} ${action.server}: ${err instanceof QuarryError ? err.message : (err as Error)?.stack ?? String(err)}; trying again`);
    } finally {
      busy.delete(action.server);
    }
  }

  async function lose(id: string, stacks: string[], reason: string): Promise<void> {
    const started = Date.now();
    say(`server ${id} is lost (${reason}); its containers start elsewhere`);
    const address = await healing!.loseServer(id, loud);
    unforgotten.add(id);
    // Nothing is sent to it from now: its routes and endpoints go before anything starts elsewhere.
    await dropRoutesTo(id, address);
    const mine = new Set(parts.store.stacks());
    for (const stack of stacks.filter((s) => mine.has(s))) pending.set(stack, { description: `server ${id} lost: its containers start elsewhere`, next: 0, delayMs: 0 });
    const failed = await convergePending();
    await forget(id);
    if (failed.length === 0) say(`server ${id} replaced in ${((Date.now() - started) / 1000).toFixed(1)} s: its stacks run on the other servers, and it is removed`);
    else say(`server ${id} removed; ${failed.join(', ')} not whole yet: tried again, less and less often (at most a minute apart)`);
  }

  async function forget(id: string): Promise<void> {
    try {
      await healing!.forgetServer(id, loud);
      unforgotten.delete(id);
    } catch (err) {
      say(`lost server ${id} could not be removed yet (${(err as Error).message}); trying again`);
    }
  }

  /** Converges every stack left to converge; the ones that failed stay for the next round. */
  async function convergePending(): Promise<string[]> {
    const failed: string[] = [];
    for (const [stack, entry] of [...pending]) {
      if (converging.has(stack) || Date.now() < entry.next) continue;
      converging.add(stack);
      try {
        await inTask(stack, entry.description, loud, (ex) => ex.converge());
        pending.delete(stack);
      } catch {
        failed.push(stack);
        entry.delayMs = Math.min(60_000, Math.max(options.intervalMs ?? HEAL_INTERVAL_MS, entry.delayMs * 2));
        entry.next = Date.now() + entry.delayMs;
      } finally {
        converging.delete(stack);
      }
    }
    return failed;
  }

  /** Routes to a lost server's address, and endpoints on it, out of etcd at once. */
  async function dropRoutesTo(id: string, address: string | undefined): Promise<void> {
    try {
      if (address !== undefined) {
        const routes = await ctx.etcd.getAll().prefix(keys.routes).strings();
        for (const [key, url] of Object.entries(routes)) {
          let host: string | undefined;
          try { host = new URL(url).hostname.replace(/^\[|\]$/g, ''); } catch { host = undefined; }
          if (host === address) await ctx.etcd.delete().key(key);
        }
      }
      for (const stack of parts.store.stacks()) {
        const endpoints = await ctx.etcd.getAll().prefix(keys.endpoints(stack)).strings();
        for (const [key, text] of Object.entries(endpoints)) {
          try {
            if ((JSON.parse(text) as { server?: string }).server === id) await ctx.etcd.delete().key(key);
          } catch { /* not a record: left */ }
        }
      }
    } catch (err) {
      say(`could not take ${id}'s routes out of etcd yet (${(err as Error).message}); its stacks' converge does`);
    }
  }

  async function moveOff(id: string, stacks: string[], progress: Progress): Promise<void> {
    const mine = new Set(parts.store.stacks());
    for (const stack of stacks.filter((s) => mine.has(s))) {
      await inTask(stack, `drain of ${id}: its containers move`, progress, (ex) => ex.moveOff(id));
    }
  }

  /** Runs `work` on the stack's last release as a task under the stack's lock. */
  async function inTask(stack: string, description: string, to: Progress, work: (ex: StackExecutor) => Promise<void>): Promise<void> {
    const unlock = await parts.locks.acquire(stack, {
      holder: `${description} (heal)`,
      waiting: (holder) => to.info(`${stack}: waiting for the change that runs (${holder.description})`),
    });
    try {
      const last = parts.store.latest(stack);
      if (!last) return;
      const task = parts.tasks.begin({ stack, reason: 'heal', description, version: last.version, previous: last.version });
      const progress = task.progress(to);
      progress.step(`${stack}: ${description}`);
      try {
        const spec = withEnv(last.spec, last.env);
        await work(new StackExecutor({ ...executorContext(parts, progress, last.version), controlKey: parts.store.controlKey(stack) }, spec, last.current, last.current));
        task.end('done');
      } catch (err) {
        progress.error(err instanceof QuarryError ? err.message : `internal error: ${(err as Error)?.stack ?? String(err)}`);
        task.end('failed');
        throw err;
      }
    } finally {
      unlock();
    }
  }

  const round = (): Promise<HealAction[]> => {
    running ??= (async () => {
      try {
        const actions = await look(healing);
        // Each server's trouble is handled on its own: a drain that takes minutes holds up no loss.
        for (const action of actions) void act(action);
        // Router hosts: a lost one's place taken, each server's router in step with its mark (never overlapping rounds).
        void healing.keepRouters?.(loud).catch((err: unknown) => say(`router hosts: ${(err as Error).message}`));
        // What a loss left undone: stacks not whole yet, a server not yet removed.
        if (!busy.has(RETRY)) {
          busy.add(RETRY);
          void (async () => {
            await convergePending();
            for (const id of [...unforgotten]) if (!busy.has(id)) await forget(id);
          })().finally(() => busy.delete(RETRY));
        }
        return actions;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const timer = setInterval(() => {
    if (!stopped) round().catch((err: unknown) => say(`could not look at the grid (${(err as Error).message})`));
  }, options.intervalMs ?? HEAL_INTERVAL_MS);
  timer.unref();

  return {
    round,
    async drain(id, remove, progress) {
      if (busy.has(id)) throw new BadRequestError(`server ${id} is already being drained or replaced`);
      busy.add(id);
      try {
        progress.step(`Draining ${id}${remove ? ', then removing it' : ''}`);
        await healing.drainServer(id, remove, progress);
        const stacks = [...new Set((await parts.cluster.list()).filter((c) => c.server === id).map((c) => c.stack))].sort();
        progress.info(stacks.length === 0 ? `nothing runs on ${id}` : `moving the containers of ${stacks.join(', ')}`);
        await moveOff(id, stacks, progress);
        const left = (await parts.cluster.list()).filter((c) => c.server === id);
        if (left.length > 0) throw new BadRequestError(`${left.map((c) => c.name).join(', ')} still run on ${id}; quarry servers drain ${id} tries again`);
        if (remove) return await parts.cluster.removeServer(id, progress);
        progress.step(`${id} is drained: nothing new goes there until quarry servers undrain ${id}`);
        const row = (await parts.cluster.servers()).find((r) => r.id === id);
        if (!row) throw new BadRequestError(`server ${id} is gone`);
        return row;
      } finally {
        busy.delete(id);
      }
    },
    undrain: (id, progress) => healing.undrainServer(id, progress),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
