import type { Etcd3 } from 'etcd3';
import type { StackSpec } from '../../compiler/index.js';
import { keys, probe, type CareRecord, type ElementMetrics, type Cluster, type PlacedContainer } from '../../launcher/index.js';
import type { PsRow } from '../control.js';
import type { ControlParts } from './context.js';
import { isFresh, readMetrics } from './top.js';
import { readStacksWithin } from './etcd-read.js';

/** How long `ps` waits for the care records: past it, ps answers without them (restarts `?`). */
export const CARE_READ_MS = 2000;

/** What the caretakers say of a stack's containers, by container name; undefined: not read in time. */
type CareOf = Map<string, CareRecord> | undefined;

/**
 * The containers of one stack, or of every stack this HQ has, as `quarry ps` shows them, each
 * probed for health, with what its caretaker says (restarts, last exit, given up).
 */
export async function psRows(parts: ControlParts, stack: string | undefined, careReadMs = CARE_READ_MS): Promise<PsRow[]> {
  const { cluster, store } = parts;
  if (stack !== undefined) store.check(stack);
  // Only this HQ's stacks: the engine may also run `quarry run` stacks or other things.
  const mine = new Set(stack !== undefined ? [stack] : store.stacks());
  const care = readCare(parts.ctx.etcd, [...mine], careReadMs);
  const metrics = readMetrics(parts.ctx.etcd, [...mine], careReadMs);
  const containers = (await cluster.list(stack)).filter((c) => mine.has(c.stack));
  const specs = new Map<string, StackSpec | undefined>();
  const rows: PsRow[] = [];
  for (const c of containers) {
    if (!specs.has(c.stack)) specs.set(c.stack, store.latest(c.stack)?.spec);
    rows.push(await psRow(cluster, c, specs.get(c.stack)));
  }
  const records = await care;
  const rates = await metrics;
  const now = Date.now();
  return rows.map((row) => withRate(withCare(row, records.get(row.stack)), rates.get(row.stack), now));
}

/**
 * An element's row with its instance's rate (logs handled per second, from its metrics
 * record, issue 17): null when it has no fresh record or the records were not read in time.
 */
function withRate(row: PsRow, records: ElementMetrics[] | undefined, now: number): PsRow {
  if (row.kind !== 'element') return row;
  const replica = Number(row.container.slice(row.container.lastIndexOf('.') + 1));
  const record = records?.find((m) => m.element === row.name && m.replica === replica && isFresh(m, now));
  return { ...row, rate: record ? record.rate : null };
}

/**
 * The care records of each stack (one prefix read per stack, all at once), bounded by
 * `withinMs`: etcd3's calls wait and retry while etcd is away, and ps must answer anyway. A
 * stack whose records did not come in time (or could not be read) maps to undefined.
 */
async function readCare(etcd: Etcd3, stacks: string[], withinMs: number): Promise<Map<string, CareOf>> {
  const read = await readStacksWithin(etcd, stacks, keys.care, withinMs);
  return new Map([...read].map(([stack, values]) => {
    if (values === undefined) return [stack, undefined];
    const records = new Map<string, CareRecord>();
    for (const text of values) {
      const record = parseCare(text);
      if (record) records.set(record.container, record);
    }
    return [stack, records];
  }));
}

function parseCare(text: string): CareRecord | undefined {
  try {
    const record = JSON.parse(text) as Partial<CareRecord>;
    if (typeof record.container !== 'string' || typeof record.restarts !== 'number') return undefined;
    return record as CareRecord;
  } catch {
    return undefined;
  }
}

/**
 * A row with its care record: its restarts (0 with no record), how it last ended, and its
 * state as the caretaker knows it: `failed` once it gave up, `restarting` while it waits out a
 * back-off (unless docker already runs it again: the record lags the restart by a moment).
 */
function withCare(row: PsRow, records: CareOf): PsRow {
  if (records === undefined) return { ...row, restarts: null };
  const record = records.get(row.container);
  if (!record) return { ...row, restarts: 0 };
  let state = row.state;
  if (record.state === 'failed') state = 'failed';
  else if (record.state === 'backoff' && row.state !== 'running') state = 'restarting';
  return {
    ...row, state, restarts: record.restarts,
    ...(record.lastExit && { lastExit: { code: record.lastExit.code, at: record.lastExit.at } }),
  };
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
    release: c.release ?? '-', ...(address !== undefined && { address }), restarts: 0,
  };
}
