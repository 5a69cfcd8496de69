/**
 * Blocks bucketed by free space, for best fit in a few word operations instead of a scan:
 * bucket `v` holds the blocks with exactly `v` MB free, and a tree of 32-bit bitmaps marks
 * the non-empty buckets, so "the smallest free space that is at least `size`" is a walk up
 * and down that tree (three or four levels for blocks up to a terabyte). Within a bucket,
 * entries are kept in `seq` order, so that among equals the oldest block wins whatever the
 * history: placement depends only on the state, and a rehearsal gives the same answers as
 * the real run.
 */

/** What the index needs of an entry: its free space, and a unique, fixed order. */
export interface FreeIndexed {
  free: number;
  readonly seq: number;
}

export class FreeIndex<T extends FreeIndexed> {
  private buckets: Array<T[] | undefined> = [];
  private levels: Uint32Array[] = [];
  private capacity = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  insert(entry: T): void {
    const v = entry.free;
    if (v >= this.capacity) this.grow(v + 1);
    let bucket = this.buckets[v];
    if (bucket === undefined) {
      bucket = [];
      this.buckets[v] = bucket;
    }
    const at = position(bucket, entry.seq);
    if (at === bucket.length) bucket.push(entry);
    else bucket.splice(at, 0, entry);
    if (bucket.length === 1) this.mark(v);
    this.count++;
  }

  delete(entry: T): void {
    const v = entry.free;
    const bucket = this.buckets[v];
    const at = bucket === undefined ? -1 : position(bucket, entry.seq);
    if (bucket === undefined || bucket[at] !== entry) throw new Error(`free index: entry not in bucket ${v}`);
    if (at === bucket.length - 1) bucket.pop();
    else bucket.splice(at, 1);
    if (bucket.length === 0) this.unmark(v);
    this.count--;
  }

  /** Changes an entry's free space and keeps it indexed. */
  update(entry: T, free: number): void {
    this.delete(entry);
    entry.free = free;
    this.insert(entry);
  }

  /**
   * The entry with the least free space that is at least `atLeast` and that `accept` takes
   * (any, without `accept`); among equals, the lowest `seq`.
   */
  bestFit(atLeast: number, accept?: (entry: T) => boolean): T | undefined {
    let v = this.next(atLeast);
    while (v >= 0) {
      const bucket = this.buckets[v]!;
      if (accept === undefined) return bucket[0];
      for (let i = 0; i < bucket.length; i++) {
        const entry = bucket[i]!;
        if (accept(entry)) return entry;
      }
      v = this.next(v + 1);
    }
    return undefined;
  }

  /** The smallest non-empty bucket at or above `from`, or -1. */
  private next(from: number): number {
    if (from >= this.capacity) return -1;
    let i = from < 0 ? 0 : from;
    let level = 0;
    const top = this.levels.length - 1;
    // Climb until a word holds a set bit at or after i.
    for (;;) {
      const words = this.levels[level]!;
      const w = i >>> 5;
      const word = w < words.length ? words[w]! & (0xffffffff << (i & 31)) : 0;
      if (word !== 0) {
        i = (w << 5) + lowestBit(word);
        break;
      }
      if (level === top) return -1;
      i = w + 1;
      level++;
    }
    // Descend to the lowest set bit under it.
    while (level > 0) {
      level--;
      i = (i << 5) + lowestBit(this.levels[level]![i]!);
    }
    return i;
  }

  private mark(v: number): void {
    let i = v;
    for (const words of this.levels) {
      const w = i >>> 5;
      const was = words[w]!;
      words[w] = was | (1 << (i & 31));
      if (was !== 0) return;
      i = w;
    }
  }

  private unmark(v: number): void {
    let i = v;
    for (const words of this.levels) {
      const w = i >>> 5;
      const now = words[w]! & ~(1 << (i & 31));
      words[w] = now;
      if (now !== 0) return;
      i = w;
    }
  }

  private grow(atLeast: number): void {
    let capacity = Math.max(1024, this.capacity);
    while (capacity < atLeast) capacity *= 2;
    this.capacity = capacity;
    // Filled, not sparse: a sparse array would fall back to slow dictionary elements.
    while (this.buckets.length < capacity) this.buckets.push(undefined);
    this.levels = [];
    let n = capacity;
    do {
      n = Math.ceil(n / 32);
      this.levels.push(new Uint32Array(n));
    } while (n > 1);
    for (let v = 0; v < this.buckets.length; v++) {
      if ((this.buckets[v]?.length ?? 0) > 0) this.mark(v);
    }
  }
}

/** Where `seq` is or would go in a bucket sorted by seq. */
function position(bucket: readonly FreeIndexed[], seq: number): number {
  let lo = 0;
  let hi = bucket.length;
  if (hi > 0 && bucket[hi - 1]!.seq < seq) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bucket[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lowestBit(word: number): number {
  return 31 - Math.clz32(word & -word);
}
