import { HandlerContext } from './context.js';
import type { Context } from './definition.js';
import { ElementRuntime, type StartOptions } from './runtime.js';
import { readWiring, type Wiring } from './wiring.js';
import { CONTROL_KEY_ENV } from './control.js';

/** A node's hold on its topology ports: a Context without handlers, and close(). */
export interface Connection extends Context {
  /** Stops: waits a moment for emitted logs to be acknowledged, then closes every socket. */
  close(): Promise<void>;
}

class NodeConnection extends HandlerContext implements Connection {
  constructor(private readonly runtime: ElementRuntime) {
    super(runtime, undefined);
  }

  readonly close = (): Promise<void> => this.runtime.stop();
}

/**
 * For a process that is not an element but takes part in the topology (a web or worker node with
 * `ports:` in quarry.yml): connects its out ports and gives emit and ask. The wiring comes from
 * QUARRY_WIRING / QUARRY_WIRING_FILE unless given.
 *
 *   const ports = await connect();
 *   const hits = await ports.ask('search', { q }, { timeoutMs: 2000 });
 */
export async function connect(wiring: Wiring = readWiring(process.env), options?: StartOptions): Promise<Connection> {
  // The control key, as for an element: from the env, taken out of it so that the rest of the
  // process and its children do not inherit it.
  const controlKey = options?.controlKey ?? process.env[CONTROL_KEY_ENV];
  delete process.env[CONTROL_KEY_ENV];
  return new NodeConnection(await ElementRuntime.start({}, wiring, { ...options, ...(controlKey ? { controlKey } : {}) }));
}
