import test from 'ava';
import { SliceGrid } from '../../slicegrid/index.js';

async function sample(): Promise<SliceGrid> {
  const grid = new SliceGrid();
  await grid.addBlock({ id: 'b1', size: 4096 });
  await grid.addBlock({ id: 'b2', size: 4096 });
  await grid.addBlock({ id: 'router1', size: 2048, tags: ['router'] });
  await grid.addMany([
    { id: 'shop.web.1', size: 1024 },
    { id: 'shop.web.2', size: 1024 },
    { id: 'blog.db.1', size: 2048 },
    { id: 'edge.router.1', size: 512, tags: ['router'] },
  ]);
  await grid.move('shop.web.1', 'b1');
  await grid.move('shop.web.2', 'b2');
  await grid.move('blog.db.1', 'b2');
  return grid;
}

test('draw: blocks as columns filled as far as used, then each block with its slices', async (t) => {
  const grid = await sample();
  t.is(
    grid.draw({ height: 4 }),
    [
      '+----+   +----+',
      '|    |   |    |',
      '|    |   |####|   +----+',
      '|    |   |####|   |    |',
      '|####|   |####|   |####|',
      '+----+   +----+   +----+',
      'b1       b2       router1',
      '25%      75%      25%',
      '',
      'b1       4096 MB  used 1024  free 3072',
      '         shop.web.1 1024',
      'b2       4096 MB  used 3072  free 1024',
      '         blog.db.1 2048, shop.web.2 1024',
      'router1  2048 MB  used 512  free 1536  tags router',
      '         edge.router.1 512',
      '',
    ].join('\n'),
  );
});

test('draw for one stack marks its slices and lists only them', async (t) => {
  const grid = await sample();
  const text = grid.draw({ height: 4, stack: 'shop' });
  t.true(text.includes('|====|'), 'other stacks are drawn =');
  t.true(text.includes('shop.web.2 1024'));
  t.false(text.includes('blog.db.1'));
});

test('draw wraps to a new row of blocks past the width', async (t) => {
  const grid = new SliceGrid();
  for (let i = 0; i < 12; i++) await grid.addBlock({ id: `block${i}`, size: 100 });
  const rows = grid.draw({ width: 40, height: 2 }).split('\n').filter((line) => line.startsWith('block0') || line.startsWith('block4'));
  t.true(rows.length >= 2);
  t.is(new SliceGrid().draw(), '(no blocks)\n');
});
