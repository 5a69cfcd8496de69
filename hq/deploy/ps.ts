import type { StackSpec } from '../../compiler/index.js';
import { probe, type Cluster, type PlacedContainer } from '../../launcher/index.js';
import type { PsRow } from '../control.js';
import type { ControlParts } from './context.js';

/** The containers of one stack, or of every stack this HQ has, as `quarry ps` shows them, each probed for health. */
export async function psRows(parts: ControlParts, stack: string | undefined): Promise<PsRow[]> {
  const { cluster, store } = parts;
  if (stack !== undefined) store.check(stack);
  // Only this HQ's stacks: the engine may also run `quarry run` stacks or other things.
  const mine = new Set(stack !== undefined ? [stack] : store.stacks());
  const containers = (await cluster.list(stack)).filter((c) => mine.has(c.stack));
  const specs = new Map<string, StackSpec | undefined>();
  const rows: PsRow[] = [];
  for (const c of containers) {
    if (!specs.has(c.stack)) specs.set(c.stack, store.latest(c.stack)?.spec);
    rows.push(await psRow(cluster, c, specs.get(c.stack)));
  }
  return rows;
}

/** One container's row: a running node with a port is probed (its `health` path for web nodes). */
async function psRow(cluster: Cluster, c: PlacedContainer, spec: StackSpec | undefined): Promise<PsRow> {
  const node = spec?.nodes.find((n) => n.name === c.unit);
  const at = node?.port !== undefined ? cluster.reach(c, node.port) : undefined;
  const published = cluster.addressing === 'published';
  let health = '-';
  if (c.state === 'running' && at && node?.port !== undefined) {
    health = (await probe(at.host, at.port, node.type === 'web' ? node.health : undefined, published ? 300 : 0)) ? 'healthy' : 'unhealthy';
  }
  const address = published ? (at && `${at.host}:${at.port}`) : (c.hostPort !== undefined ? `127.0.0.1:${c.hostPort}` : undefined);
  return {
    stack: c.stack, name: c.unit, kind: c.kind, container: c.name, server: c.server, state: c.state, health,
    release: c.release ?? '-', ...(address !== undefined && { address }),
  };
}
