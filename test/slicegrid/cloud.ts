/**
 * A pretend cloud for the grid's handlers: it makes and destroys servers, starts and stops
 * containers, records every event in order, and can be told to refuse the next call of a
 * kind, so the tests can check what the grid does when the cloud says no.
 */
import { SliceGrid, type BlockInfo, type SliceGridOptions, type SliceInfo } from '../../slicegrid/index.js';

export type CloudCall = 'create' | 'destroy' | 'added' | 'removed';

export class Cloud {
  readonly log: string[] = [];
  readonly servers = new Set<string>();
  /** Containers running: `slice@block`. */
  readonly running = new Set<string>();
  private made = 0;
  private refusals = new Map<CloudCall, number>();
  /** Size of the servers it makes; undefined: what was asked. */
  serverSize: number | undefined;

  /** Forget every refusal not yet used. */
  clearRefusals(): void {
    this.refusals.clear();
  }

  /** Refuse the `nth` next call of this kind (1 = the very next one). */
  refuse(call: CloudCall, nth = 1): void {
    this.refusals.set(call, nth);
  }

  attach(grid: SliceGrid): SliceGrid {
    grid.on('create', async (request) => {
      await Promise.resolve();
      this.check('create');
      const id = `srv${++this.made}`;
      this.servers.add(id);
      this.log.push(`create ${id}`);
      return { id, size: this.serverSize ?? request.size, tags: request.tags };
    });
    grid.on('destroy', async (block: BlockInfo) => {
      await Promise.resolve();
      this.check('destroy');
      if (block.used !== 0 || block.slices.length !== 0) throw new Error(`destroy of non-empty ${block.id}`);
      this.servers.delete(block.id);
      this.log.push(`destroy ${block.id}`);
    });
    grid.on('added', async (block: BlockInfo, slice: SliceInfo) => {
      await Promise.resolve();
      this.check('added');
      if (!block.slices.includes(slice.id) || slice.block !== block.id) throw new Error('added before placed');
      this.running.add(`${slice.id}@${block.id}`);
      this.log.push(`added ${slice.id} ${block.id}`);
    });
    grid.on('removed', async (block: BlockInfo, slice: SliceInfo) => {
      await Promise.resolve();
      this.check('removed');
      if (block.slices.includes(slice.id)) throw new Error('removed while still placed');
      this.running.delete(`${slice.id}@${block.id}`);
      this.log.push(`removed ${slice.id} ${block.id}`);
    });
    return grid;
  }

  private check(call: CloudCall): void {
    const n = this.refusals.get(call);
    if (n === undefined) return;
    if (n <= 1) {
      this.refusals.delete(call);
      throw new Error(`the cloud said no to ${call}`);
    }
    this.refusals.set(call, n - 1);
  }
}

/** A grid with a cloud attached. */
export function gridWithCloud(options: SliceGridOptions): { grid: SliceGrid; cloud: Cloud } {
  const cloud = new Cloud();
  const grid = cloud.attach(new SliceGrid(options));
  return { grid, cloud };
}

/** The allocation as `block: slice slice …` lines, for compact assertions. */
export function layout(grid: SliceGrid): string[] {
  return grid.blocks().map((b) => `${b.id}: ${b.slices.join(' ')}`.trimEnd());
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
