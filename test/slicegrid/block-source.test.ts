/**
 * The applier with an injected block source (`new SliceGrid({ blocks })`), here a fake one
 * that makes servers in memory (titles say "fake servers"): the source gets
 * the context each call passes, the grid undoes what it did when the source refuses, and
 * `rehearse()` shows the plan a call then carries out.
 */
import test from 'ava';
import {
  InvalidSliceGridArgumentError,
  SliceGrid,
  SliceGridFullError,
  SliceGridHandlerError,
  type BlockInfo,
  type BlockRequest,
  type BlockSource,
  type SliceGridOptions,
} from '../../slicegrid/index.js';
import { layout } from './cloud.js';

interface Task {
  name: string;
}

/** A block source that makes servers of `size` MB (or what is asked) and logs every call with its context. */
class Servers implements BlockSource<Task> {
  readonly log: string[] = [];
  private made = 0;
  refuseNext: 'create' | 'destroy' | undefined;
  size: number | undefined;

  async create(request: BlockRequest<Task>): Promise<{ id: string; size: number; tags: readonly string[] }> {
    await Promise.resolve();
    if (this.refuseNext === 'create') {
      this.refuseNext = undefined;
      throw new Error('no capacity');
    }
    const id = `srv${++this.made}`;
    this.log.push(`create ${id} ${request.reason}${request.slice ? ` for ${request.slice.id}` : ''} (${request.context?.name ?? 'no context'})`);
    return { id, size: this.size ?? request.size, tags: request.tags };
  }

  async destroy(block: BlockInfo, context: Task | undefined): Promise<void> {
    await Promise.resolve();
    if (this.refuseNext === 'destroy') {
      this.refuseNext = undefined;
      throw new Error('still booting');
    }
    this.log.push(`destroy ${block.id} (${context?.name ?? 'no context'})`);
  }
}

function grid(options: SliceGridOptions<Task> = {}): { grid: SliceGrid<Task>; servers: Servers; events: string[] } {
  const servers = new Servers();
  const made = new SliceGrid<Task>({ autosize: true, blockSize: 1000, blocks: servers, ...options });
  const events: string[] = [];
  for (const event of ['create', 'destroy'] as const) made.on(event, () => void events.push(event) as never);
  made.on('added', (block, slice) => void events.push(`added ${slice.id} ${block.id}`));
  made.on('removed', (block, slice) => void events.push(`removed ${slice.id} ${block.id}`));
  return { grid: made, servers, events };
}

test('fake servers: the block source is asked with the context of the call that needs it', async (t) => {
  const { grid: g, servers, events } = grid({ min: 1 });
  await g.open({ context: { name: 'boot' } });
  await g.addMany([{ id: 'a.w.1', size: 900 }, { id: 'a.w.2', size: 900 }], { context: { name: 'push shop' } });
  await g.remove('a.w.2', { context: { name: 'scale shop' } });
  await g.add('b.w.1', 50);
  t.deepEqual(servers.log, [
    'create srv1 min (boot)',
    'create srv2 full for a.w.2 (push shop)',
    'destroy srv2 (scale shop)',
  ]);
  t.deepEqual(events, ['added a.w.1 srv1', 'added a.w.2 srv2', 'removed a.w.2 srv2', 'added b.w.1 srv1'], "no 'create' or 'destroy' events: the source does that work");
});

test('fake servers: a refused create leaves the grid as it was, and says who refused', async (t) => {
  const { grid: g, servers, events } = grid();
  await g.add('a.x.1', 900);
  const before = g.toJSON();
  events.length = 0;
  servers.refuseNext = 'create';
  const error = await t.throwsAsync(g.addMany([{ id: 'b.y.1', size: 50 }, { id: 'b.y.2', size: 900 }]), { instanceOf: SliceGridHandlerError });
  t.is(error.event, 'create');
  t.regex(error.message, /the block source's create failed, asked for a 1000 MB block for slice "b.y.2": no capacity; the grid is as it was/);
  t.deepEqual(g.toJSON(), before);
  t.deepEqual(events, [], 'the batch is placed largest first: the create comes before any slice is added');
});

test('fake servers: undoing a batch destroys what it created, with the call\'s context', async (t) => {
  const { grid: g, servers } = grid();
  let n = 0;
  g.on('added', () => {
    if (++n === 2) throw new Error('container would not start');
  });
  await t.throwsAsync(g.addMany([{ id: 'a.w.1', size: 900 }, { id: 'a.w.2', size: 900 }], { context: { name: 'push' } }), {
    instanceOf: SliceGridHandlerError,
    message: /'added' handler failed for slice "a.w.2"/,
  });
  t.deepEqual(servers.log, ['create srv1 full for a.w.1 (push)', 'create srv2 full for a.w.2 (push)', 'destroy srv2 (push)', 'destroy srv1 (push)']);
  t.deepEqual(g.blocks(), []);
});

test('fake servers: a refused destroy puts the slice back', async (t) => {
  const { grid: g, servers, events } = grid();
  await g.add('a.x.1', 900);
  await g.add('a.y.1', 900);
  const before = g.toJSON();
  events.length = 0;
  servers.refuseNext = 'destroy';
  await t.throwsAsync(g.remove('a.y.1'), { instanceOf: SliceGridHandlerError, message: /the block source's destroy failed for block "srv2": still booting/ });
  t.deepEqual(g.toJSON(), before);
  t.deepEqual(events, ['removed a.y.1 srv2', 'added a.y.1 srv2']);
});

test('fake servers: a source that gives bigger blocks than planned: the rest of the batch is planned again on them', async (t) => {
  const { grid: g, servers } = grid();
  servers.size = 3000;
  // Planned on 1000 MB blocks: six new ones. The first is 3000 MB, and takes five of them.
  const placed = await g.addMany([1, 2, 3, 4, 5, 6].map((i) => ({ id: `a.w.${i}`, size: 600 })));
  t.deepEqual(servers.log, ['create srv1 full for a.w.1 (no context)', 'create srv2 full for a.w.6 (no context)']);
  t.deepEqual(layout(g), ['srv1: a.w.1 a.w.2 a.w.3 a.w.4 a.w.5', 'srv2: a.w.6']);
  t.is(placed.length, 6);
});

test('fake servers: a source that gives a block too small for the slice fails the call, undone', async (t) => {
  const { grid: g, servers } = grid();
  servers.size = 500;
  await t.throwsAsync(g.add('a.w.1', 800), { instanceOf: SliceGridHandlerError, message: /block source's create returned block "srv1" \(500 MB/ });
  t.deepEqual(servers.log, ['create srv1 full for a.w.1 (no context)', 'destroy srv1 (no context)']);
  t.deepEqual(g.blocks(), []);
});

test('fake servers: rehearse() is the plan the call carries out, and changes nothing', async (t) => {
  const { grid: g, servers, events } = grid({ min: 1 });
  await g.addBlock({ id: 'own', size: 2000 }); // srv1 first: the grid's min
  await g.add('x.db.1', 1500);
  const before = g.toJSON();
  events.length = 0;
  servers.log.length = 0;
  const batch = [
    { id: 'a.w.1', size: 700 },
    { id: 'a.w.2', size: 700 },
    { id: 'a.c.1', size: 400 },
  ];
  const plan = await g.rehearse({ kind: 'add', slices: batch });
  t.deepEqual(g.toJSON(), before);
  t.deepEqual(events, []);
  t.deepEqual(servers.log, []);
  t.deepEqual(
    plan.placements.map((p) => `${p.slice} -> ${p.block}`),
    ['a.w.1 -> srv1', 'a.w.2 -> new 1', 'a.c.1 -> own'],
  );
  const placed = await g.addMany(batch);
  // The placeholders are the blocks created, in order.
  const created = g.blocks().slice(2).map((b) => b.id);
  const named = (block: string): string => (block.startsWith('new ') ? created[Number(block.slice(4)) - 1]! : block);
  t.deepEqual(
    placed.map((s) => `${s.id} -> ${s.block}`),
    plan.placements.map((p) => `${p.slice} -> ${named(p.block)}`),
  );
});

test('fake servers: rehearse() rejects with the error the call would fail with', async (t) => {
  const { grid: g } = grid({ max: 1 });
  await g.add('a.x.1', 900);
  await t.throwsAsync(g.rehearse({ kind: 'add', slices: [{ id: 'a.y.1', size: 900 }] }), { instanceOf: SliceGridFullError, message: /max of 1 blocks/ });
  await t.throwsAsync(g.rehearse({ kind: 'add', slices: [{ id: 'a.y.1', size: 0 }] }), { instanceOf: InvalidSliceGridArgumentError });
});

test('fake servers: rehearse() of a removal shows the destroy it would bring', async (t) => {
  const { grid: g } = grid();
  await g.add('a.x.1', 900);
  await g.add('a.y.1', 900);
  const plan = await g.rehearse({ kind: 'remove', slices: ['a.y.1'] });
  t.deepEqual(plan.removals, [{ slice: 'a.y.1', size: 900, block: 'srv2' }]);
  t.deepEqual(plan.destroys, ['srv2']);
  t.is(g.blocks().length, 2);
});

test('fake servers: blocks must be a block source', (t) => {
  t.throws(() => new SliceGrid({ blocks: {} as BlockSource }), { instanceOf: InvalidSliceGridArgumentError, message: /block source/ });
});
