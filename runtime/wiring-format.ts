/**
 * The wiring format: what `QUARRY_WIRING` holds, the contract between whoever wires an element
 * (the runner, HQ: plan/wiring.ts) and the runtime that reads it. Types only, and no imports,
 * so that the plan can take the format without the runtime's code (zeromq and the rest).
 */

/**
 * Where one element process binds and whom it talks to: handed to the runtime once at start
 * (by the local runner, or by the launcher on a server), plain JSON so it can travel in an env
 * var, a file or an etcd key. Peers may change later through a PeerSource.
 */
export interface Wiring {
  stack?: string;
  /** The element's name in the topology. */
  element: string;
  /** Its class (informational: the code is loaded by the launcher). */
  class?: string;
  /** This process's member number in its shard, 0-based; 0 when not sharded. */
  member?: number;
  /** How many members the shard has; 1 when not sharded. */
  members?: number;
  /** The element's `config` from the topology. */
  config?: Record<string, unknown>;
  /** Where to bind the control socket (stats, peer changes); none when absent. */
  control?: string;
  /** Tuning for every port; a port's own settings win. */
  defaults?: PortTuning;
  ports: Record<string, PortWiring>;
}

export type PortKind = 'push' | 'query';

export type PortWiring = InPortWiring | OutPortWiring;

/** An `in` port binds: a push port receives batches, a query port answers. */
export interface InPortWiring extends PortTuning {
  kind: PortKind;
  dir: 'in';
  /** A ZeroMQ endpoint: `tcp://0.0.0.0:7001`, `tcp://127.0.0.1:*`, `ipc:///tmp/x.sock`. */
  bind: string;
}

/** An `out` port connects to every member of every target. */
export interface OutPortWiring extends PortTuning {
  kind: PortKind;
  dir: 'out';
  targets: Target[];
}

/**
 * One connection from an out port to an in port of another element. A push gives every log
 * to every target (fan-out) and, within a target, to one member (`by`); a query asks every
 * member of every target and merges their answers.
 */
export interface Target {
  element: string;
  port: string;
  /** How pushes spread over the members: `round-robin` (default) or `hash:<field>`. */
  by?: string;
  members: Member[];
}

/** One member of the target element: a stable id (survives restarts) and its endpoint. */
export interface Member {
  id: string;
  endpoint: string;
}

export interface PortTuning {
  /** Push: logs per batch (default 256). */
  batch?: number;
  /** Push: a batch that is not full is sent this long after its first log (default 5 ms). */
  flushMs?: number;
  /** Push: batches in flight per member, unacknowledged; the queue size (default 32). */
  queue?: number;
  /** Query out: default timeout of one query (default 5000 ms). */
  timeoutMs?: number;
  /** Query in: handlers running at once (default 64). */
  concurrency?: number;
}
