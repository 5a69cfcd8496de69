import test from 'ava';
import { FreeIndex } from '../../slicegrid/free-index.js';
import { prng } from './cloud.js';

interface Entry {
  free: number;
  readonly seq: number;
}

/** What bestFit must answer: the least free at or above, oldest first among equals. */
function naive(entries: readonly Entry[], atLeast: number, accept?: (e: Entry) => boolean): Entry | undefined {
  let best: Entry | undefined;
  for (const e of entries) {
    if (e.free < atLeast || (accept !== undefined && !accept(e))) continue;
    if (best === undefined || e.free < best.free || (e.free === best.free && e.seq < best.seq)) best = e;
  }
  return best;
}

test('bestFit agrees with a scan over random inserts, updates and deletes, across bitmap words and growth', (t) => {
  const random = prng(7);
  const index = new FreeIndex<Entry>();
  const live: Entry[] = [];
  let seq = 0;
  for (let step = 0; step < 5000; step++) {
    const roll = random();
    // Mostly small values, some far above the first capacity, so the bitmap tree grows.
    const value = (): number => (random() < 0.95 ? Math.floor(random() * 3000) : Math.floor(random() * 200_000));
    if (roll < 0.35 || live.length === 0) {
      const e = { free: value(), seq: seq++ };
      index.insert(e);
      live.push(e);
    } else if (roll < 0.7) {
      index.update(live[Math.floor(random() * live.length)]!, value());
    } else if (roll < 0.8) {
      const [e] = live.splice(Math.floor(random() * live.length), 1);
      index.delete(e!);
    } else {
      const atLeast = value();
      const odd = random() < 0.5 ? (e: Entry) => e.seq % 2 === 1 : undefined;
      const got = index.bestFit(atLeast, odd);
      const want = naive(live, atLeast, odd);
      if (got !== want) t.fail(`step ${step}: bestFit(${atLeast}) gave ${JSON.stringify(got)}, a scan ${JSON.stringify(want)}`);
    }
  }
  t.is(index.size, live.length);
});

test('bestFit finds nothing in an empty index or above every value', (t) => {
  const index = new FreeIndex<Entry>();
  t.is(index.bestFit(0), undefined);
  index.insert({ free: 31, seq: 0 });
  index.insert({ free: 32, seq: 1 });
  t.is(index.bestFit(32)?.seq, 1);
  t.is(index.bestFit(33), undefined);
  t.is(index.bestFit(0)?.seq, 0);
});
