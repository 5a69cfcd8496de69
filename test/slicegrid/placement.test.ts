import test from 'ava';
import {
  DuplicateIdError,
  InvalidSliceGridArgumentError,
  SliceGrid,
  SliceGridFullError,
  SliceTooLargeError,
  type SliceRequest,
} from '../../slicegrid/index.js';
import { layout } from './cloud.js';

interface Row {
  name: string;
  /** Blocks, in order, with the slices already on each. */
  blocks: Array<{ id: string; size: number; tags?: string[]; slices?: SliceRequest[] }>;
  slice: SliceRequest;
  /** The block it goes on, or the error class. */
  expect: string | (new (...args: never[]) => Error);
}

const rows: Row[] = [
  {
    name: 'best fit: the block it fills tightest, not the first with room',
    blocks: [
      { id: 'a', size: 4096 },
      { id: 'b', size: 4096, slices: [{ id: 'x.old.1', size: 3500 }] },
      { id: 'c', size: 4096, slices: [{ id: 'x.mid.1', size: 3000 }] },
    ],
    slice: { id: 'x.new.1', size: 500 },
    expect: 'b',
  },
  {
    name: 'an exact fit wins',
    blocks: [
      { id: 'a', size: 1024 },
      { id: 'b', size: 512 },
    ],
    slice: { id: 'x.new.1', size: 512 },
    expect: 'b',
  },
  {
    name: 'skips blocks without room',
    blocks: [
      { id: 'a', size: 256 },
      { id: 'b', size: 2048 },
    ],
    slice: { id: 'x.new.1', size: 512 },
    expect: 'b',
  },
  {
    name: 'tags are constraints: a router slice goes on a router block only',
    blocks: [
      { id: 'a', size: 4096, slices: [{ id: 'x.f.1', size: 3900 }] },
      { id: 'r', size: 4096, tags: ['router'] },
    ],
    slice: { id: 'x.router.1', size: 100, tags: ['router'] },
    expect: 'r',
  },
  {
    name: 'a slice needs every tag it names',
    blocks: [
      { id: 'r', size: 4096, tags: ['router'] },
      { id: 'rs', size: 4096, tags: ['router', 'ssd'] },
    ],
    slice: { id: 'x.router.1', size: 100, tags: ['ssd', 'router'] },
    expect: 'rs',
  },
  {
    name: 'an untagged slice prefers an untagged block over a tighter router block',
    blocks: [
      { id: 'r', size: 4096, tags: ['router'], slices: [{ id: 'x.router.1', size: 3000, tags: ['router'] }] },
      { id: 'a', size: 4096 },
    ],
    slice: { id: 'x.web.1', size: 512 },
    expect: 'a',
  },
  {
    name: 'an untagged slice may use a router block when nothing else has room',
    blocks: [
      { id: 'a', size: 1024, slices: [{ id: 'x.db.1', size: 1000 }] },
      { id: 'r', size: 4096, tags: ['router'] },
    ],
    slice: { id: 'x.web.1', size: 512 },
    expect: 'r',
  },
  {
    name: 'replicas spread: a block without one of its group, even a looser one',
    blocks: [
      { id: 'a', size: 4096, slices: [{ id: 'shop.web.1', size: 512 }, { id: 'x.db.1', size: 3000 }] },
      { id: 'b', size: 4096 },
    ],
    slice: { id: 'shop.web.2', size: 512 },
    expect: 'b',
  },
  {
    name: 'replicas share a block when no other block has room (the grid does not grow to spread)',
    blocks: [
      { id: 'a', size: 4096, slices: [{ id: 'shop.web.1', size: 512 }] },
      { id: 'b', size: 4096, slices: [{ id: 'x.db.1', size: 4000 }] },
    ],
    slice: { id: 'shop.web.2', size: 512 },
    expect: 'a',
  },
  {
    name: 'the group comes from the id: other nodes of the stack do not count',
    blocks: [
      { id: 'a', size: 4096, slices: [{ id: 'shop.worker.1', size: 3000 }] },
      { id: 'b', size: 4096 },
    ],
    slice: { id: 'shop.web.1', size: 512 },
    expect: 'a',
  },
  {
    name: 'an explicit group overrides the id',
    blocks: [
      { id: 'a', size: 4096, slices: [{ id: 'one', size: 3000, group: 'pair' }] },
      { id: 'b', size: 4096 },
    ],
    slice: { id: 'two', size: 512, group: 'pair' },
    expect: 'b',
  },
  {
    name: 'group null opts out of spreading',
    blocks: [
      { id: 'a', size: 4096, slices: [{ id: 'shop.web.1', size: 3000 }] },
      { id: 'b', size: 4096 },
    ],
    slice: { id: 'shop.web.2', size: 512, group: null },
    expect: 'a',
  },
  {
    name: 'full without autosize',
    blocks: [{ id: 'a', size: 1024, slices: [{ id: 'x.db.1', size: 800 }] }],
    slice: { id: 'x.web.1', size: 512 },
    expect: SliceGridFullError,
  },
  {
    name: 'larger than every block',
    blocks: [{ id: 'a', size: 1024 }],
    slice: { id: 'x.web.1', size: 2048 },
    expect: SliceTooLargeError,
  },
  {
    name: 'no block with the tag',
    blocks: [{ id: 'a', size: 4096 }],
    slice: { id: 'x.router.1', size: 64, tags: ['router'] },
    expect: SliceGridFullError,
  },
  {
    name: 'an id that is taken',
    blocks: [{ id: 'a', size: 4096, slices: [{ id: 'x.web.1', size: 64 }] }],
    slice: { id: 'x.web.1', size: 64 },
    expect: DuplicateIdError,
  },
  {
    name: 'a size that is not whole MB',
    blocks: [{ id: 'a', size: 4096 }],
    slice: { id: 'x.web.1', size: 1.5 },
    expect: InvalidSliceGridArgumentError,
  },
  {
    name: 'a size of 0',
    blocks: [{ id: 'a', size: 4096 }],
    slice: { id: 'x.web.1', size: 0 },
    expect: InvalidSliceGridArgumentError,
  },
];

for (const row of rows) {
  test(`placement: ${row.name}`, async (t) => {
    const grid = new SliceGrid();
    for (const b of row.blocks) await grid.addBlock({ id: b.id, size: b.size, tags: b.tags ?? [] });
    for (const b of row.blocks) {
      for (const s of b.slices ?? []) {
        await grid.addMany([s]);
        await grid.move(s.id, b.id);
      }
    }
    const before = grid.toJSON();
    const { id, size, tags, group } = row.slice;
    const adding = grid.add(id, size, tags, group === undefined ? {} : { group });
    if (typeof row.expect === 'string') {
      const block = await adding;
      t.is(block.id, row.expect);
      t.true(block.slices.includes(id));
    } else {
      await t.throwsAsync(adding, { instanceOf: row.expect });
      t.deepEqual(grid.toJSON(), before);
    }
  });
}

test('a batch is placed largest first, and each slice lands where best fit puts it', async (t) => {
  const grid = new SliceGrid();
  await grid.addBlock({ id: 'a', size: 1000 });
  await grid.addBlock({ id: 'b', size: 1000 });
  // In arrival order, first fit or best fit would put 300 and 300 on a, then 700 on b, and 400 nowhere.
  const placed = await grid.addMany([
    { id: 's1', size: 300 },
    { id: 's2', size: 300 },
    { id: 's3', size: 700 },
    { id: 's4', size: 600 },
    { id: 's5', size: 100 },
  ]);
  t.deepEqual(
    placed.map((s) => s.id),
    ['s1', 's2', 's3', 's4', 's5'],
    'answers come back in the order asked',
  );
  t.deepEqual(layout(grid), ['a: s1 s3', 'b: s2 s4 s5']);
});

test('a batch that cannot fit fails whole, before any event', async (t) => {
  const grid = new SliceGrid();
  const events: string[] = [];
  grid.on('added', (_b, s) => void events.push(s.id));
  await grid.addBlock({ id: 'a', size: 1000 });
  await t.throwsAsync(
    grid.addMany([
      { id: 's1', size: 600 },
      { id: 's2', size: 600 },
    ]),
    { instanceOf: SliceGridFullError, message: /s2.*fits on no block/ },
  );
  t.deepEqual(events, []);
  t.deepEqual(grid.slices(), []);
});

test('a batch with an id twice is refused', async (t) => {
  const grid = new SliceGrid();
  await grid.addBlock({ id: 'a', size: 1000 });
  await t.throwsAsync(
    grid.addMany([
      { id: 's1', size: 1 },
      { id: 's1', size: 2 },
    ]),
    { instanceOf: DuplicateIdError },
  );
  t.deepEqual(grid.slices(), []);
  await grid.add('s1', 1);
  t.is(grid.slice('s1')?.block, 'a', 'the refused batch left the id free');
});

test('replicas in one batch spread over the blocks that have room', async (t) => {
  const grid = new SliceGrid();
  for (const id of ['a', 'b', 'c']) await grid.addBlock({ id, size: 4096 });
  await grid.addMany([1, 2, 3].map((n) => ({ id: `shop.web.${n}`, size: 512 })));
  t.deepEqual(layout(grid), ['a: shop.web.1', 'b: shop.web.2', 'c: shop.web.3']);
});
