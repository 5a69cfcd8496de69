/**
 * Property tests: random sequences of add, addMany, remove, addBlock, removeBlock, move and
 * compaction, with the cloud refusing a random call now and then, on grids with random
 * options. After every call the invariants must hold; a failed call must leave the grid as
 * it was; the events seen must add up to the state; a reload must give the same state.
 * Seeded, so a failure names the seed and step that reproduce it.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SliceGrid, SliceGridError, SliceGridHandlerError, type SliceGridOptions, type SliceRequest } from '../../slicegrid/index.js';
import { Cloud, prng, type CloudCall } from './cloud.js';

const TAGS = [[], [], [], [], ['router'], ['ssd'], ['router', 'ssd']] as const;
const BLOCK = 1000;
/** What the sequences did, to see that they reach every path. */
const stats = new Map<string, number>();

function check(t: ExecutionContext, grid: SliceGrid, cloud: Cloud, options: SliceGridOptions, where: string): void {
  const blocks = grid.blocks();
  const slices = grid.slices();
  const ids = new Set<string>();
  for (const block of blocks) {
    const on = slices.filter((s) => s.block === block.id);
    const used = on.reduce((sum, s) => sum + s.size, 0);
    if (used > block.size || block.used !== used || block.free !== block.size - used) {
      t.fail(`${where}: block ${block.id} holds ${used} of ${block.size} MB, says used ${block.used} free ${block.free}`);
    }
    if (JSON.stringify(on.map((s) => s.id)) !== JSON.stringify(block.slices)) t.fail(`${where}: block ${block.id} lists other slices than are on it`);
    for (const s of on) {
      if (!s.tags.every((tag) => block.tags.includes(tag))) t.fail(`${where}: ${s.id} [${s.tags}] on ${block.id} [${block.tags}]`);
    }
  }
  for (const s of slices) {
    if (ids.has(s.id)) t.fail(`${where}: slice ${s.id} twice`);
    ids.add(s.id);
    if (grid.slice(s.id)?.block !== s.block) t.fail(`${where}: slice(${s.id}) disagrees`);
  }
  if (blocks.length > (options.max ?? Infinity)) t.fail(`${where}: ${blocks.length} blocks, max ${options.max}`);
  // The events seen add up to the state: containers running = slices placed, servers = blocks.
  const placed = slices.map((s) => `${s.id}@${s.block}`).sort();
  if (JSON.stringify([...cloud.running].sort()) !== JSON.stringify(placed)) {
    t.fail(`${where}: events say ${[...cloud.running].sort().join(' ')}; grid says ${placed.join(' ')}`);
  }
  const servers = blocks.map((b) => b.id).sort();
  if (JSON.stringify([...cloud.servers].sort()) !== JSON.stringify(servers)) {
    t.fail(`${where}: events say servers ${[...cloud.servers].sort().join(' ')}; grid says ${servers.join(' ')}`);
  }
}

async function run(t: ExecutionContext, seed: number, steps: number, file?: string): Promise<void> {
  const random = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const autosize = random() < 0.7;
  const min = Math.floor(random() * 3);
  const max = random() < 0.5 ? Infinity : min + 2 + Math.floor(random() * 6);
  const options: SliceGridOptions = { autosize, min, max, blockSize: BLOCK, ...(file === undefined ? {} : { file }) };
  const cloud = new Cloud();
  const grid = cloud.attach(new SliceGrid(options));
  // create is only asked for when no block can take the slice.
  grid.prependListener('create', (request) => {
    if (request.reason !== 'full') return undefined;
    const slice = request.slice!;
    const current = grid.slice(slice.id)?.block;
    const room = grid
      .blocks()
      .filter((b) => b.id !== current && b.free >= slice.size && slice.tags.every((tag) => b.tags.includes(tag)));
    if (room.length > 0) t.fail(`seed ${seed}: create asked for ${slice.id} while ${room[0]!.id} has room`);
    return undefined;
  });
  await grid.open();
  let nextSlice = 0;
  let nextBlock = 0;
  const size = (): number => (random() < 0.03 ? BLOCK + 1 + Math.floor(random() * 500) : 1 + Math.floor(BLOCK * random() ** 3));
  const request = (): SliceRequest => {
    const tags = pick(TAGS);
    return { id: `st${Math.floor(random() * 4)}.n${Math.floor(random() * 5)}.${nextSlice++}`, size: size(), tags: [...tags] };
  };

  for (let step = 0; step < steps; step++) {
    const where = `seed ${seed} step ${step}`;
    const before = grid.toJSON();
    const blocksBefore = before.blocks.length;
    if (random() < 0.15) cloud.refuse(pick<CloudCall>(['create', 'destroy', 'added', 'removed']), 1 + Math.floor(random() * 3));
    const slices = grid.slices();
    const blocks = grid.blocks();
    const roll = random();
    let op: string;
    let call: Promise<unknown>;
    if (roll < 0.3) {
      const r = request();
      op = `add ${r.id} ${r.size} [${r.tags}]`;
      call = grid.add(r.id, r.size, r.tags);
    } else if (roll < 0.42) {
      const batch = Array.from({ length: 1 + Math.floor(random() * 6) }, request);
      op = `addMany ${batch.length}`;
      call = grid.addMany(batch);
    } else if (roll < 0.62) {
      const id = slices.length > 0 && random() < 0.95 ? pick(slices).id : 'no.such.1';
      op = `remove ${id}`;
      call = grid.remove(id);
    } else if (roll < 0.72) {
      const id = `m${nextBlock++}`;
      const spec = { id, size: pick([500, BLOCK, 2000]), tags: [...pick(TAGS)] };
      op = `addBlock ${id}`;
      call = grid.addBlock(spec).then(() => cloud.servers.add(id));
    } else if (roll < 0.82) {
      const id = blocks.length > 0 ? pick(blocks).id : 'none';
      op = `removeBlock ${id}`;
      call = grid.removeBlock(id).then(() => cloud.servers.delete(id));
    } else if (roll < 0.95) {
      if (slices.length === 0 || blocks.length === 0) continue;
      const slice = pick(slices);
      const to = pick(blocks).id;
      op = `move ${slice.id} ${to}`;
      call = grid.move(slice.id, to);
    } else {
      op = 'compact';
      cloud.clearRefusals();
      call = grid.compact().then(async (plan) => {
        for (const move of plan.moves) await grid.move(move.slice, move.to);
        await grid.shrink();
        const destroyable = autosize ? plan.empties.length : 0;
        if (grid.blocks().length !== plan.blocksBefore - destroyable) {
          t.fail(`${where}: compaction left ${grid.blocks().length} blocks, planned ${plan.blocksAfter}`);
        }
        for (const id of plan.empties) if ((grid.block(id)?.used ?? 0) !== 0) t.fail(`${where}: ${id} was to be emptied`);
      });
    }
    const kind = op.split(' ')[0]!;
    try {
      await call;
      stats.set(`${kind} ok`, (stats.get(`${kind} ok`) ?? 0) + 1);
    } catch (error) {
      stats.set(`${kind} ${(error as Error).name}`, (stats.get(`${kind} ${(error as Error).name}`) ?? 0) + 1);
      if (!(error instanceof SliceGridError)) throw error;
      if (error instanceof SliceGridHandlerError && error.undoFailures.length > 0) t.fail(`${where} ${op}: undo failed: ${error.message}`);
      t.deepEqual(grid.toJSON(), before, `${where} ${op}: failed with ${error.message} and changed the grid`);
    }
    cloud.clearRefusals();
    const after = grid.blocks().length;
    if (after < Math.min(blocksBefore, min)) t.fail(`${where} ${op}: ${after} blocks, min ${min}, was ${blocksBefore}`);
    check(t, grid, cloud, options, `${where} ${op}`);
    if (file !== undefined) {
      const again = new SliceGrid({ file });
      await again.open();
      t.deepEqual(again.toJSON(), grid.toJSON(), `${where} ${op}: reloaded grid differs`);
    }
  }
  t.pass();
}

const SEEDS = 12;
for (let group = 0; group < 4; group++) {
  test(`random sequences keep every invariant (seeds ${group * SEEDS}-${group * SEEDS + SEEDS - 1})`, async (t) => {
    for (let seed = group * SEEDS; seed < (group + 1) * SEEDS; seed++) await run(t, seed, 150);
  });
}

test('random sequences with a file reload to the same grid after every call', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'slicegrid-prop-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (let seed = 1000; seed < 1003; seed++) await run(t, seed, 60, join(dir, `grid-${seed}.json`));
});

test.after.always(() => {
  if (process.env.SLICEGRID_STATS) console.log([...stats].sort().map(([k, v]) => `${k}: ${v}`).join('\n'));
});
