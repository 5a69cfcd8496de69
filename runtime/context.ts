import type { AckToken } from './ack-token.js';
import type { ElementStats } from './counters.js';
import type { AskOptions, Context } from './definition.js';
import type { Log } from './log.js';

/** What a Context needs from the runtime that made it. */
export interface ContextHost {
  readonly element: string;
  readonly member: number;
  readonly members: number;
  readonly config: Record<string, unknown>;
  readonly signal: AbortSignal;
  push(port: string, log: Log, token: AckToken | undefined): Promise<void> | undefined;
  pushMany(port: string, logs: readonly Log[], token: AckToken | undefined): Promise<void> | undefined;
  ask(port: string, request: unknown, options: AskOptions | undefined): Promise<unknown>;
  askEach(port: string, request: unknown, options: AskOptions | undefined): Promise<unknown[]>;
  stats(): ElementStats;
}

const RESOLVED = Promise.resolve();

/**
 * The Context of one handler call. A push handler's context carries the acknowledgement of its
 * batch, so the logs it emits hold that acknowledgement back until they are delivered. Its
 * functions are bound: `onPush(port, logs, { emit, config })` works.
 */
export class HandlerContext implements Context<any> {
  constructor(
    protected readonly host: ContextHost,
    private readonly token: AckToken | undefined,
  ) {}

  get element(): string {
    return this.host.element;
  }
  get member(): number {
    return this.host.member;
  }
  get members(): number {
    return this.host.members;
  }
  get config(): any {
    return this.host.config;
  }
  get signal(): AbortSignal {
    return this.host.signal;
  }

  readonly emit = (port: string, log: Log): Promise<void> => this.host.push(port, log, this.token) ?? RESOLVED;

  readonly emitMany = (port: string, logs: readonly Log[]): Promise<void> =>
    this.host.pushMany(port, logs, this.token) ?? RESOLVED;

  readonly ask = <A = unknown>(port: string, request: unknown, options?: AskOptions): Promise<A> =>
    this.host.ask(port, request, options) as Promise<A>;

  readonly askEach = <A = unknown>(port: string, request: unknown, options?: AskOptions): Promise<A[]> =>
    this.host.askEach(port, request, options) as Promise<A[]>;

  readonly stats = (): ElementStats => this.host.stats();
}
