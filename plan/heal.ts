/**
 * HQ's side of healing (DESIGN.md, the reconcile loop), as a pure plan: what HQ sees of each
 * server of the grid goes in, what to do about it comes out. A crashed container is its
 * server's caretaker's (the agent restarts it where it is, on the same ports); HQ handles what
 * an agent cannot: a server that is gone, and a server being drained.
 */

/** What HQ sees of one server of the grid. */
export interface ServerSight {
  id: string;
  /** Its agent holds its record in etcd: the agent's lease (TTL ≤ 10 s) is alive. */
  agent: boolean;
  /** Whether its docker engine answered HQ's last look; undefined when HQ has not looked. */
  engine?: boolean;
  /** `quarry servers drain` asked for it: no new containers go there, its containers move. */
  draining?: { remove: boolean };
  /** The stacks with containers on it (its slices in the grid, or what its engine listed). */
  stacks: string[];
}

export type HealAction =
  /** Its agent's lease expired: look whether its engine still answers before calling it lost. */
  | { op: 'probe'; server: string }
  /** Lease expired and engine silent: its containers start elsewhere, then it is removed through its provider. */
  | { op: 'lose'; server: string; stacks: string[]; reason: string }
  /** Draining: these stacks' containers on it start elsewhere, healthy and routed before the old ones stop. */
  | { op: 'drain'; server: string; stacks: string[] }
  /** Drained empty with `--remove`: removed through its provider. */
  | { op: 'retire'; server: string }
  /** Drained empty, kept: nothing runs there until `quarry servers undrain`. */
  | { op: 'drained'; server: string };

export interface HealOptions {
  /** Whether the grid's servers run agents at all (without, no lease says anything). */
  agents: boolean;
}

/**
 * One round of the loop. A server whose agent holds its lease is alive whatever else; one
 * whose lease is gone is probed, and lost only when its engine does not answer either (an
 * agent that died on a working server is not a lost server). Loss comes before drain.
 */
export function healPlan(servers: readonly ServerSight[], options: HealOptions): HealAction[] {
  const actions: HealAction[] = [];
  for (const server of [...servers].sort((a, b) => a.id.localeCompare(b.id))) {
    if (options.agents && !server.agent) {
      if (server.engine === undefined) {
        actions.push({ op: 'probe', server: server.id });
        continue;
      }
      if (!server.engine) {
        actions.push({
          op: 'lose', server: server.id, stacks: [...new Set(server.stacks)].sort(),
          reason: 'its agent\'s lease expired and its docker engine does not answer',
        });
        continue;
      }
    }
    if (server.draining) {
      if (server.stacks.length > 0) actions.push({ op: 'drain', server: server.id, stacks: [...new Set(server.stacks)].sort() });
      else actions.push(server.draining.remove ? { op: 'retire', server: server.id } : { op: 'drained', server: server.id });
    }
  }
  return actions;
}

/** The stack of a container or slice named `<stack>.<name>.<n>`. */
export function stackOf(container: string): string {
  const parts = container.split('.');
  return parts.slice(0, -2).join('.') || container;
}
