import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startElement, type ElementDefinition, type ElementRuntime, type Member, type PortTuning, type StartOptions, type Target, type Wiring } from '../../runtime/index.js';

let next = 0;

/** A fresh ipc endpoint for this test process. */
export function ipc(): string {
  return `ipc://${join(tmpdir(), `qrt-${process.pid}-${next++}.sock`)}`;
}

export function members(endpoints: string[]): Member[] {
  return endpoints.map((endpoint, i) => ({ id: String(i), endpoint }));
}

export function target(endpoints: string[], by?: string, element = 'next', port = 'in'): Target {
  return { element, port, members: members(endpoints), ...(by === undefined ? {} : { by }) };
}

/** A source with one push out port `out`. */
export function sourceWiring(targets: Target[], tuning: PortTuning = {}, config: Record<string, unknown> = {}): Wiring {
  return { element: 'source', config, ports: { out: { kind: 'push', dir: 'out', targets, ...tuning } } };
}

/** A sink with one push in port `in`. */
export function sinkWiring(bind: string, tuning: PortTuning = {}, member = 0, members = 1): Wiring {
  return { element: 'sink', member, members, ports: { in: { kind: 'push', dir: 'in', bind, ...tuning } } };
}

/** Waits until `check` is true, polling; fails after `ms` with `what`. */
export async function until(check: () => boolean, what: string, ms = 20000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Starts an element for a test and stops it when the test ends, passed or failed. */
export async function run(
  t: { teardown(fn: () => unknown): void },
  definition: ElementDefinition<any>,
  wiring: Wiring,
  options?: StartOptions,
): Promise<ElementRuntime> {
  const rt = await startElement(definition, wiring, { drainMs: 500, ...options });
  t.teardown(() => rt.stop().catch(() => {}));
  return rt;
}
