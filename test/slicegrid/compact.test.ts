import test from 'ava';
import { SliceGrid } from '../../slicegrid/index.js';
import { gridWithCloud, layout } from './cloud.js';

async function scattered(options: { min?: number } = {}): Promise<ReturnType<typeof gridWithCloud>> {
  const made = gridWithCloud({ autosize: true, blockSize: 1000, ...options });
  const { grid } = made;
  // Fill four blocks, then remove most slices so that they are a quarter used each.
  await grid.addMany([1, 2, 3, 4].flatMap((n) => [{ id: `keep.k${n}.1`, size: 250 }, { id: `gone.g${n}.1`, size: 700 }]));
  for (const n of [1, 2, 3, 4]) await grid.remove(`gone.g${n}.1`);
  return made;
}

test('compact plans moves that empty blocks, and changes nothing itself', async (t) => {
  const { grid, cloud } = await scattered();
  t.is(grid.blocks().length, 4);
  const before = grid.toJSON();
  cloud.log.length = 0;
  const plan = await grid.compact();
  t.deepEqual(grid.toJSON(), before);
  t.deepEqual(cloud.log, []);
  t.is(plan.blocksBefore, 4);
  t.is(plan.blocksAfter, 1);
  t.is(plan.moves.length, 3);
  t.is(plan.empties.length, 3);
  for (const move of plan.moves) {
    t.true(plan.empties.includes(move.from));
    t.false(plan.empties.includes(move.to));
  }
});

test('applying the plan with move() destroys the emptied blocks', async (t) => {
  const { grid, cloud } = await scattered();
  const plan = await grid.compact();
  cloud.log.length = 0;
  for (const move of plan.moves) await grid.move(move.slice, move.to);
  t.is(grid.blocks().length, 1);
  t.deepEqual(cloud.log.filter((line) => line.startsWith('destroy')).sort(), plan.empties.map((id) => `destroy ${id}`).sort());
  t.is(grid.blocks()[0]!.used, 1000);
});

test('compact keeps min blocks', async (t) => {
  const { grid } = await scattered({ min: 3 });
  const plan = await grid.compact();
  t.is(plan.blocksAfter, 3);
  t.is(plan.empties.length, 1);
});

test('compact respects tags: a router slice only moves to a router block', async (t) => {
  const grid = new SliceGrid();
  await grid.addBlock({ id: 'plain', size: 1000 });
  await grid.addBlock({ id: 'r', size: 1000, tags: ['router'] });
  await grid.add('x.router.1', 100, ['router']);
  await grid.add('x.web.1', 100);
  const plan = await grid.compact();
  t.deepEqual(plan.moves, [{ slice: 'x.web.1', size: 100, from: 'plain', to: 'r' }]);
  t.deepEqual(plan.empties, ['plain']);
});

test('a grid packed tight has nothing to compact', async (t) => {
  const { grid } = gridWithCloud({ autosize: true, blockSize: 1000 });
  await grid.addMany([1, 2, 3].map((n) => ({ id: `a.w.${n}`, size: 900 })));
  const plan = await grid.compact();
  t.deepEqual(plan.moves, []);
  t.is(plan.blocksAfter, 3);
  t.deepEqual(layout(grid).length, 3);
});
