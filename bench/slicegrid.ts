/**
 * bench:slicegrid — 100,000 slices, sizes 64 MB to 2 GB skewed to the small end, onto
 * 4 GB blocks with autosize on; slicegrid's best fit (largest first within each batch)
 * beside plain first fit (arrival order) and first fit decreasing on the same slices.
 * Every figure is the median of three runs; the last line is JSON.
 *
 *   npm run bench:slicegrid [-- --slices N --batch N --seed N]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SliceGrid, type SliceRequest } from '../slicegrid/index.js';

const BLOCK = 4096;
/** Each figure is the median of this many runs. */
const ROUNDS = 3;

interface Options {
  slices: number;
  batch: number;
  seed: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { slices: 100_000, batch: 1000, seed: 42 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in options) || !Number.isFinite(value)) throw new Error(`usage: bench/slicegrid.ts [--slices N] [--batch N] [--seed N]`);
    options[key] = value;
  }
  return options;
}

/** mulberry32: a small seeded PRNG, so every run places the same slices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Slices as pushes would bring them: stacks of 1-8 nodes, each node 1-4 replicas of one
 * size. A size is 64 MB × 32^(u²): 64 MB to 2 GB, log-skewed to the small end (45% at
 * most 128 MB, 77% at most 512 MB, 11% above 1 GB).
 */
function generate(count: number, seed: number): SliceRequest[][] {
  const random = prng(seed);
  const stacks: SliceRequest[][] = [];
  let made = 0;
  for (let s = 0; made < count; s++) {
    const stack: SliceRequest[] = [];
    const nodes = 1 + Math.floor(random() * 8);
    for (let n = 0; n < nodes && made < count; n++) {
      const u = random();
      const size = Math.round(64 * 32 ** (u * u));
      const replicas = 1 + Math.floor(random() * 4);
      for (let r = 1; r <= replicas && made < count; r++, made++) stack.push({ id: `s${s}.n${n}.${r}`, size });
    }
    stacks.push(stack);
  }
  return stacks;
}

/** Groups pushes into batches of about `size` slices (a batch placed together, largest first). */
function batches(stacks: SliceRequest[][], size: number): SliceRequest[][] {
  const out: SliceRequest[][] = [];
  let current: SliceRequest[] = [];
  for (const stack of stacks) {
    current.push(...stack);
    if (current.length >= size) {
      out.push(current);
      current = [];
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}

interface Run {
  blocksUsed: number;
  blocks: number;
  seconds: number;
  placementsPerSec: number;
}

async function runGrid(batchList: SliceRequest[][], file?: string, keep?: (grid: SliceGrid) => void): Promise<Run> {
  const grid = new SliceGrid({ autosize: true, blockSize: BLOCK, ...(file === undefined ? {} : { file }) });
  let n = 0;
  grid.on('create', (request) => ({ id: `b${++n}`, size: request.size, tags: request.tags }));
  const count = batchList.reduce((sum, b) => sum + b.length, 0);
  const start = process.hrtime.bigint();
  for (const batch of batchList) {
    if (batch.length === 1) await grid.add(batch[0]!.id, batch[0]!.size);
    else await grid.addMany(batch);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const blocks = grid.blocks();
  keep?.(grid);
  return {
    blocks: blocks.length,
    blocksUsed: blocks.filter((b) => b.used > 0).length,
    seconds,
    placementsPerSec: Math.round(count / seconds),
  };
}

/** Plain first fit: each slice on the first block (oldest) with room; a segment tree of free space finds it in O(log n). */
function firstFit(sizes: readonly number[]): Run {
  const start = process.hrtime.bigint();
  let leaves = 1;
  while (leaves < sizes.length) leaves *= 2;
  const tree = new Int32Array(2 * leaves); // max free under each node; unopened blocks count as 0
  let opened = 0;
  for (const size of sizes) {
    let leaf: number;
    if (tree[1]! >= size) {
      let i = 1;
      while (i < leaves) i = tree[2 * i]! >= size ? 2 * i : 2 * i + 1;
      leaf = i;
    } else {
      leaf = leaves + opened++;
      tree[leaf] = BLOCK;
    }
    tree[leaf]! -= size;
    for (let i = leaf >> 1; i >= 1; i >>= 1) tree[i] = Math.max(tree[2 * i]!, tree[2 * i + 1]!);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { blocks: opened, blocksUsed: opened, seconds, placementsPerSec: Math.round(sizes.length / seconds) };
}

/** The run with the median speed of `times` (the machine may be busy with other work). */
async function median(times: number, once: () => Run | Promise<Run>): Promise<Run> {
  const runs: Run[] = [];
  for (let i = 0; i < times; i++) runs.push(await once());
  runs.sort((a, b) => a.placementsPerSec - b.placementsPerSec);
  return runs[Math.floor(runs.length / 2)]!;
}

function ratio(blocks: number, lowerBound: number): number {
  return Math.round((blocks / lowerBound) * 10000) / 10000;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const stacks = generate(options.slices, options.seed);
  const all = stacks.flat();
  const sizes = all.map((s) => s.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  const lowerBound = Math.ceil(total / BLOCK);
  const sorted = [...sizes].sort((a, b) => b - a);
  const small = sizes.filter((s) => s <= 256).length;
  console.log(
    `${all.length} slices in ${stacks.length} pushes, ${total} MB in all (mean ${Math.round(total / all.length)} MB, ${Math.round((small / all.length) * 100)}% at most 256 MB), ${BLOCK} MB blocks: lower bound ${lowerBound} blocks`,
  );

  // Warm the JIT on a tenth of the work, so the figures are of steady-state code.
  const warm = batches(generate(Math.max(1, options.slices / 10), options.seed + 1), options.batch);
  await runGrid(warm);
  firstFit(warm.flat().map((s) => s.size));

  const line = (name: string, run: Run): void =>
    console.log(
      `${name.padEnd(44)} ${String(run.blocksUsed).padStart(7)} blocks  ${ratio(run.blocksUsed, lowerBound).toFixed(4)} x LB  ${String(run.placementsPerSec).padStart(10)} placements/s`,
    );

  const ff = await median(ROUNDS, () => firstFit(sizes));
  line('first fit, arrival order', ff);
  const ffd = await median(ROUNDS, () => firstFit(sorted));
  line('first fit decreasing, all at once', ffd);

  const online = await median(ROUNDS, () => runGrid(all.map((s) => [s])));
  line('slicegrid add(), one at a time', online);
  const perPush = await median(ROUNDS, () => runGrid(stacks));
  line('slicegrid addMany(), one batch per push', perPush);
  let packed: SliceGrid | undefined;
  const batched = await median(ROUNDS, () => runGrid(batches(stacks, options.batch), undefined, (grid) => (packed = grid)));
  line(`slicegrid addMany(), batches of ~${options.batch}`, batched);
  const tight = await packed!.compact();
  console.log(`  compact() after it: ${tight.moves.length} moves would empty ${tight.empties.length} blocks`);
  // Churn: a third of the slices go away (no destroy handler, so the blocks stay half empty).
  const churn = prng(options.seed + 2);
  const gone = all.filter(() => churn() < 1 / 3);
  for (const slice of gone) await packed!.remove(slice.id);
  const left = Math.ceil((total - gone.reduce((sum, s) => sum + s.size, 0)) / BLOCK);
  const planStart = process.hrtime.bigint();
  const plan = await packed!.compact();
  const planMs = Math.round(Number(process.hrtime.bigint() - planStart) / 1e6);
  packed = undefined;
  console.log(
    `  after removing ${gone.length} slices at random: compact() plans ${plan.moves.length} moves, ${plan.blocksBefore} -> ${plan.blocksAfter} blocks (lower bound ${left}, ${ratio(plan.blocksAfter, left).toFixed(4)} x), in ${planMs} ms`,
  );
  const oneBatch = await median(ROUNDS, () => runGrid([all]));
  line('slicegrid addMany(), all in one batch', oneBatch);

  const dir = await mkdtemp(join(tmpdir(), 'slicegrid-bench-'));
  let persisted: Run;
  try {
    persisted = await runGrid(batches(stacks, options.batch), join(dir, 'grid.json'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  line(`  same, persisted to a file after each batch`, persisted);

  console.log(
    JSON.stringify({
      slices: all.length,
      blocks: batched.blocks,
      blockSize: BLOCK,
      batch: options.batch,
      placementsPerSec: batched.placementsPerSec,
      blocksUsed: batched.blocksUsed,
      lowerBound,
      ratio: ratio(batched.blocksUsed, lowerBound),
      firstFit: { blocksUsed: ff.blocksUsed, ratio: ratio(ff.blocksUsed, lowerBound), placementsPerSec: ff.placementsPerSec },
      firstFitDecreasing: { blocksUsed: ffd.blocksUsed, ratio: ratio(ffd.blocksUsed, lowerBound) },
      online: { blocksUsed: online.blocksUsed, ratio: ratio(online.blocksUsed, lowerBound), placementsPerSec: online.placementsPerSec },
      perPush: { blocksUsed: perPush.blocksUsed, ratio: ratio(perPush.blocksUsed, lowerBound), placementsPerSec: perPush.placementsPerSec },
      oneBatch: { blocksUsed: oneBatch.blocksUsed, ratio: ratio(oneBatch.blocksUsed, lowerBound), placementsPerSec: oneBatch.placementsPerSec },
      persisted: { placementsPerSec: persisted.placementsPerSec },
      churn: { removed: gone.length, blocksBefore: plan.blocksBefore, compactedTo: plan.blocksAfter, moves: plan.moves.length, lowerBound: left },
    }),
  );
}

await main();
