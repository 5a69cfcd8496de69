import { randomUUID } from 'node:crypto';
import type { AckToken } from './ack-token.js';
import { HandlerContext, type ContextHost } from './context.js';
import { answerControl, ControlGate, DEFAULT_DRAINED_WAIT_MS, DEFAULT_HOLD_MS, type Controllable } from './control.js';
import { BusyClock, type ElementStats, type PortCounters } from './counters.js';
import type { AskOptions, ElementDefinition } from './definition.js';
import { ElementCodeError, PortError, WiringError } from './errors.js';
import type { Log } from './log.js';
import { mergeAnswers } from './merge.js';
import type { PeerSource } from './peers.js';
import { PushInPort } from './push-in.js';
import { PushOutPort } from './push-out.js';
import { QueryInPort } from './query-in.js';
import { QueryOutPort } from './query-out.js';
import { tuningOf, type Target, type Wiring } from './wiring.js';

export interface StartOptions {
  /** Where later peer changes come from (an etcd watch, the runner); none: the wiring's peers stay. */
  peers?: PeerSource;
  /** How long stop() waits for emitted logs to be acknowledged (default 2000 ms). */
  drainMs?: number;
  /**
   * The secret the control socket answers to (the process launcher passes `QUARRY_CONTROL_KEY`).
   * None: the control socket refuses every request.
   */
  controlKey?: string;
  /** Where lines about the element's own life go (refused control requests); default stderr. */
  log?: (line: string) => void;
}

type InPort = PushInPort | QueryInPort;

/**
 * Requests the control socket answers at once. A `drained` wait takes one for its whole wait,
 * so at most DRAINED_WAITS of them wait at a time (more are answered at once, with what is in
 * flight then) and the others always find room.
 */
const CONTROL_CONCURRENCY = 16;
const DRAINED_WAITS = 8;

/**
 * One running element: its ports bound and connected, its handlers called, its source run.
 * `done` settles when the element stops: resolved by stop(), rejected when element code threw
 * (a push handler or the generator) — the process should then exit so it is restarted.
 */
export class ElementRuntime implements ContextHost, Controllable {
  readonly incarnation = randomUUID();
  readonly element: string;
  readonly member: number;
  readonly members: number;
  readonly config: Record<string, unknown>;
  readonly done: Promise<void>;
  /** Resolves when the source's generator has ended and all it emitted is acknowledged. */
  readonly sourceDone: Promise<void>;
  private readonly abort = new AbortController();
  private readonly pushOut = new Map<string, PushOutPort>();
  private readonly queryOut = new Map<string, QueryOutPort>();
  private readonly inPorts: InPort[] = [];
  private control: QueryInPort | undefined;
  private readonly startedAt = Date.now();
  /** The time the element's handlers run (onPush, onQuery): `busyMs`. */
  private readonly busy = new BusyClock();
  private settle!: { resolve(): void; reject(err: unknown): void };
  private sourceSettle!: { resolve(): void; reject(err: unknown): void };
  private stopping: Promise<void> | undefined;
  private readonly context: HandlerContext;
  /** `drained` requests waiting now. */
  private drainedWaits = 0;

  private constructor(
    private readonly definition: ElementDefinition<any>,
    private readonly wiring: Wiring,
    private readonly options: StartOptions,
  ) {
    this.element = wiring.element;
    this.member = wiring.member ?? 0;
    this.members = wiring.members ?? 1;
    this.config = wiring.config ?? {};
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.sourceDone = new Promise((resolve, reject) => (this.sourceSettle = { resolve, reject }));
    this.done.catch(() => {});
    this.sourceDone.catch(() => {});
    this.context = new HandlerContext(this, undefined);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Checks the code against the wiring, connects, runs start(), binds, and starts the source. */
  static async start(definition: ElementDefinition<any>, wiring: Wiring, options: StartOptions = {}): Promise<ElementRuntime> {
    const rt = new ElementRuntime(definition, wiring, options);
    await rt.open();
    return rt;
  }

  private async open(): Promise<void> {
    const { definition: def, wiring } = this;
    const faults: string[] = [];
    for (const [name, port] of Object.entries(wiring.ports)) {
      const tuning = tuningOf(wiring, port);
      if (port.dir === 'out') {
        if (port.kind === 'push') this.pushOut.set(name, new PushOutPort(name, port.targets, tuning));
        else this.queryOut.set(name, new QueryOutPort(name, port.targets, tuning.timeoutMs));
      } else if (port.kind === 'push') {
        if (typeof def.onPush !== 'function') faults.push(`push in port '${name}' needs onPush`);
        this.inPorts.push(new PushInPort(name, port.bind, this.incarnation, tuning.queue, tuning.batch, (p, logs, token) => this.onBatch(p, logs, token)));
      } else {
        if (typeof def.onQuery !== 'function') faults.push(`query in port '${name}' needs onQuery`);
        this.inPorts.push(new QueryInPort(name, port.bind, tuning.concurrency, (p, request) => this.onQuery(p, request)));
      }
    }
    if (def.generate !== undefined && this.pushOut.size === 0) faults.push('generate needs a push out port');
    if (faults.length > 0) {
      this.closePorts();
      throw new ElementCodeError(`element ${this.element}: ${faults.join('; ')}`);
    }
    try {
      await def.start?.(this.context);
      for (const port of this.inPorts) await port.bind();
      if (wiring.control !== undefined) {
        const gate = new ControlGate(this.options.controlKey, this.options.log ?? ((line) => void process.stderr.write(`${line}\n`)));
        this.control = new QueryInPort('$control', wiring.control, CONTROL_CONCURRENCY, async (_p, request) => answerControl(this, request, gate));
        await this.control.bind();
        this.control.run().catch(() => {});
      }
    } catch (err) {
      this.closePorts();
      throw err;
    }
    for (const port of this.inPorts) port.run().catch((err) => this.fail(err));
    await this.options.peers?.watch((change) => this.setPeers(change.port, change.targets));
    if (def.generate !== undefined) void this.runSource();
    else this.sourceSettle.resolve();
  }

  private async onBatch(port: string, logs: Log[], token: AckToken): Promise<void> {
    const onPush = this.definition.onPush as NonNullable<ElementDefinition['onPush']>;
    const ctx = new HandlerContext(this, token);
    this.busy.enter();
    try {
      await onPush.call(this.definition, port, logs, ctx);
    } finally {
      this.busy.leave();
    }
    // Backpressure: take no more input while an out port is full.
    for (const out of this.pushOut.values()) if (out.full) await out.room();
    token.release();
  }

  private async onQuery(port: string, request: unknown): Promise<unknown> {
    const onQuery = this.definition.onQuery as NonNullable<ElementDefinition['onQuery']>;
    this.busy.enter();
    try {
      return await onQuery.call(this.definition, port, request, this.context);
    } finally {
      this.busy.leave();
    }
  }

  private async runSource(): Promise<void> {
    const generate = this.definition.generate as NonNullable<ElementDefinition['generate']>;
    const only = this.pushOut.size === 1 ? [...this.pushOut.keys()][0] : undefined;
    try {
      for await (const item of generate.call(this.definition, this.context)) {
        if (this.abort.signal.aborted) break;
        if (only === undefined) throw new ElementCodeError(`element ${this.element}: generate may yield only with one push out port; use ctx.emit`);
        const wait = Array.isArray(item) ? this.pushMany(only, item, undefined) : this.push(only, item, undefined);
        if (wait !== undefined) await wait;
      }
      for (const out of this.pushOut.values()) await out.drained(this.abort.signal);
      this.sourceSettle.resolve();
    } catch (err) {
      this.sourceSettle.reject(err);
      this.fail(err);
    }
  }

  push(port: string, log: Log, token: AckToken | undefined): Promise<void> | undefined {
    return this.outPush(port).push(log, token);
  }

  pushMany(port: string, logs: readonly Log[], token: AckToken | undefined): Promise<void> | undefined {
    return this.outPush(port).pushMany(logs, token);
  }

  async askEach(port: string, request: unknown, options: AskOptions | undefined): Promise<unknown[]> {
    const out = this.queryOut.get(port);
    if (out === undefined) throw new PortError(`element ${this.element} has no query out port '${port}'`);
    return out.askEach(request, options?.timeoutMs);
  }

  async ask(port: string, request: unknown, options: AskOptions | undefined): Promise<unknown> {
    const answers = await this.askEach(port, request, options);
    const merge = this.definition.merge?.[port];
    return merge !== undefined ? merge(answers, request) : mergeAnswers(answers);
  }

  private outPush(port: string): PushOutPort {
    const out = this.pushOut.get(port);
    if (out === undefined) throw new PortError(`element ${this.element} has no push out port '${port}'`);
    return out;
  }

  /** New peers for an out port (from the PeerSource or the control socket): reconnects. */
  setPeers(port: string, targets: Target[]): void {
    const out = this.pushOut.get(port) ?? this.queryOut.get(port);
    if (out === undefined) throw new PortError(`element ${this.element} has no out port '${port}'`);
    out.setTargets(targets);
  }

  /** A push out port by name, for re-sharding; else a WiringError naming it. */
  private reshardPort(port: string): PushOutPort {
    const out = this.pushOut.get(port);
    if (out === undefined) {
      const known = [...this.pushOut.keys()];
      throw new WiringError(`element ${this.element} has no push out port '${port}' (its push out ports: ${known.length > 0 ? known.join(', ') : 'none'})`);
    }
    return out;
  }

  /**
   * Re-sharding: the push out port `port` hands no batch to the members of `target`
   * (`<element>.<port>`) until release() or `holdMs` pass; emit waits meanwhile. Returns the
   * logs in flight (handed to members, not acknowledged).
   */
  hold(port: string, target: string, holdMs = DEFAULT_HOLD_MS): { inFlight: number } {
    return { inFlight: this.reshardPort(port).hold(target, holdMs) };
  }

  /** Ends a hold; waiting batches are placed. Nothing if there is none. */
  release(port: string, target: string): { inFlight: number } {
    return { inFlight: this.reshardPort(port).release(target) };
  }

  /**
   * Resolves once nothing of `target` is in flight (every batch handed to its members
   * acknowledged or given back), or after `waitMs`, with the logs still in flight. With
   * `incarnations` (the members that shed, from their `shed` answers) a round-robin target
   * counts only those members: the others stay, and what they hold needs no waiting for. A
   * hash target counts every member (any key may move).
   */
  async drained(port: string, target: string, waitMs = DEFAULT_DRAINED_WAIT_MS, incarnations?: string[]): Promise<{ inFlight: number }> {
    const out = this.reshardPort(port);
    const only = incarnations === undefined ? undefined : new Set(incarnations);
    if (this.drainedWaits >= DRAINED_WAITS) return { inFlight: await out.idle(target, 0, only) };
    this.drainedWaits++;
    try {
      return { inFlight: await out.idle(target, waitMs, only) };
    } finally {
      this.drainedWaits--;
    }
  }

  /**
   * The push in port `port` gives back every batch it has not started (NACKs). Answers how many,
   * and this process's incarnation (which its producers know it by: `drained`).
   */
  shed(port: string): { shed: number; incarnation: string } {
    const inPort = this.inPorts.find((p) => p.name === port);
    if (!(inPort instanceof PushInPort)) {
      const known = this.inPorts.filter((p) => p instanceof PushInPort).map((p) => p.name);
      throw new WiringError(`element ${this.element} has no push in port '${port}' (its push in ports: ${known.length > 0 ? known.join(', ') : 'none'})`);
    }
    return { shed: inPort.shed(), incarnation: this.incarnation };
  }

  /** The endpoint each in port (and `$control`) is bound to. */
  endpoints(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const port of this.inPorts) out[port.name] = port.endpoint;
    if (this.control !== undefined) out.$control = this.control.endpoint;
    return out;
  }

  stats(): ElementStats {
    const ports: ElementStats['ports'] = {};
    const add = (name: string, counters: PortCounters, peers: string[]) => (ports[name] = counters.snapshot(peers));
    for (const port of this.inPorts) add(port.name, port.counters, []);
    for (const [name, out] of this.pushOut) add(name, out.counters, out.peers());
    for (const [name, out] of this.queryOut) add(name, out.counters, out.peers());
    return {
      element: this.element, member: this.member, incarnation: this.incarnation, uptimeMs: Date.now() - this.startedAt,
      busyMs: this.busy.ms(), ports,
    };
  }

  /**
   * Stops taking input, stops the source, waits up to `drainMs` for what was emitted to be
   * acknowledged, runs the element's stop(), and closes every socket.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown(undefined);
    return this.stopping;
  }

  private fail(err: unknown): void {
    this.stopping ??= this.shutdown(err);
  }

  private async shutdown(error: unknown): Promise<void> {
    for (const port of this.inPorts) port.close();
    this.abort.abort();
    if (error === undefined) {
      const drainMs = this.options.drainMs ?? 2000;
      const deadline = AbortSignal.timeout(drainMs);
      await Promise.all([...this.pushOut.values()].map((out) => out.drained(deadline)));
    }
    try {
      await this.definition.stop?.(this.context);
    } finally {
      await this.options.peers?.close();
      this.closePorts();
      this.sourceSettle.resolve();
      if (error === undefined) this.settle.resolve();
      else this.settle.reject(error);
    }
  }

  private closePorts(): void {
    for (const port of this.inPorts) port.close();
    for (const out of this.pushOut.values()) out.close();
    for (const out of this.queryOut.values()) out.close();
    this.control?.close();
  }
}

/** Starts an element in this process; see ElementRuntime. */
export function startElement(definition: ElementDefinition<any>, wiring: Wiring, options?: StartOptions): Promise<ElementRuntime> {
  return ElementRuntime.start(definition, wiring, options);
}
