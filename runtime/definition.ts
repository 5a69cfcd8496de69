import type { ElementStats } from './counters.js';
import type { Log } from './log.js';

/** What element code sees: its config, its ports, its counters. One per handler call. */
export interface Context<C = Record<string, unknown>> {
  /** The element's name in the topology, its member number and the shard's size. */
  readonly element: string;
  readonly member: number;
  readonly members: number;
  /** The element's `config` from the topology. */
  readonly config: C;
  /** Aborted when the element is stopping: long loops and waits should end. */
  readonly signal: AbortSignal;
  /**
   * Sends a log out of a push port. Resolves at once while the port's queue has room; when it is
   * full, resolves once the consumers have caught up. Await it to keep memory bounded inside a
   * handler that emits many logs; the runtime awaits room before the next batch anyway.
   */
  emit(port: string, log: Log): Promise<void>;
  /** emit() for many logs at once. */
  emitMany(port: string, logs: readonly Log[]): Promise<void>;
  /**
   * Asks a query port: every member of every connected element, answers merged (the element's
   * `merge` for the port, else arrays concatenated, objects merged, anything else as a list).
   * Rejects with QueryTimeoutError, QueryFailedError or NoPeersError.
   */
  ask<A = unknown>(port: string, request: unknown, options?: AskOptions): Promise<A>;
  /** Asks every member and gives each answer, in member order, unmerged. */
  askEach<A = unknown>(port: string, request: unknown, options?: AskOptions): Promise<A[]>;
  /** The element's counters now. */
  stats(): ElementStats;
}

export interface AskOptions {
  /** This query's timeout (default: the port's `timeoutMs`, 5000 ms). */
  timeoutMs?: number;
}

/** How the answers of several members to one query become one answer. */
export type Merge = (answers: unknown[], request: unknown) => unknown;

/**
 * An element class's code. Every part is optional; an element has those its ports need:
 * `onPush` for push in ports, `onQuery` for query in ports, `generate` for a source.
 */
export interface ElementDefinition<C = Record<string, unknown>> {
  /** Runs before any log or query is taken (open files, connect to services). */
  start?(ctx: Context<C>): void | Promise<void>;
  /**
   * Handles one batch of logs from a push in port. Batches of one port come one at a time, in
   * order. A batch is acknowledged when this resolves and every log it emitted is acknowledged
   * downstream; a batch may come again after a restart (at least once): handle it idempotently.
   * A throw stops the element (it is restarted, and the batch comes again).
   */
  onPush?(port: string, logs: Log[], ctx: Context<C>): void | Promise<void>;
  /** Answers one query from a query in port; many run at once. A throw is the asker's error. */
  onQuery?(port: string, request: any, ctx: Context<C>): unknown;
  /**
   * A source's logs: each yielded log (or array of logs) goes to the element's one push out
   * port; the generator is paused while that port's queue is full. To feed several ports, call
   * ctx.emit inside and yield nothing.
   */
  generate?(ctx: Context<C>): AsyncIterable<Log | Log[]> | Iterable<Log | Log[]>;
  /** Per query out port: how to merge the members' answers. */
  merge?: Record<string, Merge>;
  /** Runs when the element stops, after its ports have stopped taking input. */
  stop?(ctx: Context<C>): void | Promise<void>;
}

const BRAND = Symbol.for('quarry.element');

/**
 * Declares an element class's code; `export default element({...})`. It only types and marks
 * the definition, so code that imports another copy of the runtime still works.
 */
export function element<C = Record<string, unknown>>(definition: ElementDefinition<C>): ElementDefinition<C> {
  Object.defineProperty(definition, BRAND, { value: true });
  return definition;
}

/** True for anything that looks like an element definition (element() or a plain object). */
export function isElementDefinition(value: unknown): value is ElementDefinition<any> {
  if (typeof value !== 'object' || value === null) return false;
  if ((value as Record<symbol, unknown>)[BRAND] === true) return true;
  const v = value as Record<string, unknown>;
  return ['onPush', 'onQuery', 'generate', 'start'].some((k) => typeof v[k] === 'function');
}
