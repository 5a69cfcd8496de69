import test from 'ava';
import {
  InvalidSliceGridArgumentError,
  SliceGrid,
  SliceGridFullError,
  SliceGridHandlerError,
  SliceGridLimitError,
  SliceTooLargeError,
  UnknownBlockError,
  UnknownSliceError,
} from '../../slicegrid/index.js';
import { gridWithCloud, layout } from './cloud.js';

test('a full grid asks create once, even for many waiting calls', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  const blocks = await Promise.all([1, 2, 3, 4, 5].map((n) => grid.add(`s.w.${n}`, 100, [], { group: null })));
  t.deepEqual(
    cloud.log.filter((line) => line.startsWith('create')),
    ['create srv1'],
  );
  t.true(blocks.every((b) => b.id === 'srv1'));
  t.is(grid.blocks()[0]!.used, 500);
});

test('events come in order: create, then added', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  await grid.add('shop.web.1', 600);
  await grid.add('shop.web.2', 600);
  t.deepEqual(cloud.log, ['create srv1', 'added shop.web.1 srv1', 'create srv2', 'added shop.web.2 srv2']);
});

test('handlers are awaited one after the other, in the order they were added', async (t) => {
  const grid = new SliceGrid();
  const seen: string[] = [];
  grid.on('added', async () => {
    seen.push('first starts');
    await new Promise((resolve) => setTimeout(resolve, 10));
    seen.push('first ends');
  });
  grid.once('added', () => void seen.push('second'));
  await grid.addBlock({ id: 'a', size: 100 });
  await grid.add('x', 10);
  await grid.add('y', 10);
  t.deepEqual(seen, ['first starts', 'first ends', 'second', 'first starts', 'first ends']);
});

test('remove: removed, then destroy when autosize emptied a block above min', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000, min: 1 });
  await grid.add('a.x.1', 900);
  await grid.add('a.y.1', 900);
  cloud.log.length = 0;
  await grid.remove('a.y.1');
  t.deepEqual(cloud.log, ['removed a.y.1 srv2', 'destroy srv2']);
  await grid.remove('a.x.1');
  t.deepEqual(cloud.log.slice(2), ['removed a.x.1 srv1'], 'the last block stays: min is 1');
  t.deepEqual(layout(grid), ['srv1:']);
});

test('without autosize, an emptied block stays and nothing is created', async (t) => {
  const { grid, cloud } = gridWithCloud({ blockSize: 1000 });
  await grid.addBlock({ id: 'b1', size: 1000 });
  await grid.add('a.x.1', 900);
  await t.throwsAsync(grid.add('a.y.1', 900), { instanceOf: SliceGridFullError, message: /autosize is off/ });
  await grid.remove('a.x.1');
  t.deepEqual(cloud.log, ['added a.x.1 b1', 'removed a.x.1 b1']);
  t.deepEqual(layout(grid), ['b1:']);
});

test('open creates blocks up to min with autosize', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000, min: 2 });
  await grid.open();
  t.deepEqual(cloud.log, ['create srv1', 'create srv2']);
  t.is(grid.blocks().length, 2);
});

test('max: the grid never grows beyond it, and the error says so', async (t) => {
  const { grid } = gridWithCloud({ autosize: true, blockSize: 1000, max: 2 });
  await grid.add('a.x.1', 900);
  await grid.add('a.x.2', 900);
  const before = grid.toJSON();
  await t.throwsAsync(grid.add('a.x.3', 900), { instanceOf: SliceGridFullError, message: /max of 2 blocks/ });
  t.deepEqual(grid.toJSON(), before);
  await t.throwsAsync(grid.addBlock({ id: 'extra', size: 10 }), { instanceOf: SliceGridLimitError, message: /max of 2/ });
});

test('a slice bigger than new blocks is refused with SliceTooLargeError', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  await t.throwsAsync(grid.add('a.big.1', 1001), { instanceOf: SliceTooLargeError, message: /raise blockSize/ });
  t.deepEqual(cloud.log, []);
  await grid.addBlock({ id: 'huge', size: 8000 });
  t.is((await grid.add('a.big.1', 1001)).id, 'huge', 'but it may go on a bigger block that exists');
});

test('autosize without a create handler says what is missing', async (t) => {
  const grid = new SliceGrid({ autosize: true, blockSize: 1000 });
  await t.throwsAsync(grid.add('a', 10), { instanceOf: SliceGridFullError, message: /nothing handles 'create'/ });
});

test('bad options are refused at once', (t) => {
  t.throws(() => new SliceGrid({ autosize: true }), { instanceOf: InvalidSliceGridArgumentError, message: /blockSize/ });
  t.throws(() => new SliceGrid({ min: 3, max: 2 }), { instanceOf: InvalidSliceGridArgumentError });
  t.throws(() => new SliceGrid({ min: -1 }), { instanceOf: InvalidSliceGridArgumentError });
});

test('create refused: the call rejects and nothing changed', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  await grid.add('a.x.1', 900);
  const before = grid.toJSON();
  cloud.refuse('create');
  const error = await t.throwsAsync(grid.add('a.y.1', 900), { instanceOf: SliceGridHandlerError });
  t.is(error.event, 'create');
  t.regex(error.message, /'create' handler failed.*the cloud said no.*as it was/);
  t.deepEqual(grid.toJSON(), before);
  t.is((await grid.add('a.y.1', 900)).id, 'srv2', 'the next try works');
});

test('added refused half-way through a batch: placed slices removed, created blocks destroyed', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  await grid.add('a.x.1', 500);
  const before = grid.toJSON();
  const servers = [...cloud.servers];
  const running = [...cloud.running];
  cloud.log.length = 0;
  cloud.refuse('added', 4);
  const batch = [1, 2, 3, 4].map((n) => ({ id: `b.w.${n}`, size: 600 }));
  await t.throwsAsync(grid.addMany(batch), { instanceOf: SliceGridHandlerError, message: /'added' handler failed for slice "b.w.4"/ });
  t.deepEqual(grid.toJSON(), before);
  t.deepEqual([...cloud.servers], servers);
  t.deepEqual([...cloud.running], running);
  t.deepEqual(cloud.log, [
    'create srv2',
    'added b.w.1 srv2',
    'create srv3',
    'added b.w.2 srv3',
    'create srv4',
    'added b.w.3 srv4',
    'create srv5',
    // undone newest first: each created block emptied before it is destroyed
    'destroy srv5',
    'removed b.w.3 srv4',
    'destroy srv4',
    'removed b.w.2 srv3',
    'destroy srv3',
    'removed b.w.1 srv2',
    'destroy srv2',
  ]);
});

test('destroy refused on remove: the slice is started again and the grid is as before', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  await grid.add('a.x.1', 900);
  await grid.add('a.y.1', 900);
  const before = grid.toJSON();
  cloud.log.length = 0;
  cloud.refuse('destroy');
  const error = await t.throwsAsync(grid.remove('a.y.1'), { instanceOf: SliceGridHandlerError });
  t.is(error.event, 'destroy');
  t.deepEqual(grid.toJSON(), before);
  t.deepEqual(cloud.log, ['removed a.y.1 srv2', 'added a.y.1 srv2']);
});

test('removed refused: the slice stays', async (t) => {
  const { grid, cloud } = gridWithCloud({});
  await grid.addBlock({ id: 'b', size: 100 });
  await grid.add('a', 10);
  cloud.refuse('removed');
  await t.throwsAsync(grid.remove('a'), { instanceOf: SliceGridHandlerError, message: /'removed'/ });
  t.is(grid.slice('a')?.block, 'b');
});

test('an undo that fails too is reported, and the grid keeps what exists', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  cloud.refuse('added');
  cloud.refuse('destroy');
  const error = await t.throwsAsync(grid.add('a.x.1', 10), { instanceOf: SliceGridHandlerError });
  t.is(error.undoFailures.length, 1);
  t.regex(error.message, /undoing .* failed too/);
  t.deepEqual(layout(grid), ['srv1:'], 'the server that could not be destroyed is still a block');
});

test('create must return a block the slice fits on', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  cloud.serverSize = 500;
  await t.throwsAsync(grid.add('a.x.1', 800), { instanceOf: SliceGridHandlerError, message: /returned block "srv1" \(500 MB/ });
  t.deepEqual(grid.blocks(), []);
  t.deepEqual(cloud.log, ['create srv1', 'destroy srv1']);
});

test('create must return a block at all', async (t) => {
  const grid = new SliceGrid({ autosize: true, blockSize: 1000 });
  grid.on('create', () => ({ id: '', size: 1000 }));
  await t.throwsAsync(grid.add('a', 1), { instanceOf: SliceGridHandlerError, message: /did not return a block/ });
});

test('removeBlock moves its slices elsewhere first, make before break', async (t) => {
  const { grid, cloud } = gridWithCloud({ autosize: true, blockSize: 1000 });
  await grid.addBlock({ id: 'old', size: 1000 });
  await grid.add('a.x.1', 700);
  await grid.add('a.y.1', 200);
  cloud.log.length = 0;
  await grid.removeBlock('old');
  t.deepEqual(cloud.log, ['create srv1', 'added a.x.1 srv1', 'removed a.x.1 old', 'added a.y.1 srv1', 'removed a.y.1 old']);
  t.deepEqual(layout(grid), ['srv1: a.x.1 a.y.1']);
});

test('removeBlock: never below min, unknown ids, and no room means no change', async (t) => {
  const { grid, cloud } = gridWithCloud({ min: 1 });
  await grid.addBlock({ id: 'a', size: 1000 });
  await t.throwsAsync(grid.removeBlock('a'), { instanceOf: SliceGridLimitError, message: /min is 1/ });
  await t.throwsAsync(grid.removeBlock('nope'), { instanceOf: UnknownBlockError });
  await t.throwsAsync(grid.remove('nope'), { instanceOf: UnknownSliceError });
  await grid.addBlock({ id: 'b', size: 500 });
  await grid.add('big', 800);
  const before = grid.toJSON();
  cloud.log.length = 0;
  await t.throwsAsync(grid.removeBlock('a'), { instanceOf: SliceGridFullError });
  t.deepEqual(grid.toJSON(), before);
  t.deepEqual(cloud.log, [], 'refused before any event');
});

test('move: to a named block, checked for room and tags', async (t) => {
  const { grid, cloud } = gridWithCloud({});
  await grid.addBlock({ id: 'a', size: 1000 });
  await grid.addBlock({ id: 'b', size: 300 });
  await grid.addBlock({ id: 'r', size: 1000, tags: ['router'] });
  await grid.add('x.router.1', 400, ['router']);
  await grid.add('x.web.1', 400);
  await t.throwsAsync(grid.move('x.router.1', 'a'), { instanceOf: InvalidSliceGridArgumentError, message: /lacks \[router\]/ });
  await t.throwsAsync(grid.move('x.web.1', 'b'), { instanceOf: SliceGridFullError, message: /300 MB free/ });
  cloud.log.length = 0;
  await grid.move('x.web.1', 'r');
  t.deepEqual(cloud.log, ['added x.web.1 r', 'removed x.web.1 a']);
  t.deepEqual(layout(grid), ['a:', 'b:', 'r: x.router.1 x.web.1']);
});
