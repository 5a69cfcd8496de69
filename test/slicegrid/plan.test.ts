/**
 * The planner, table-driven: a grid's state and a change in, the plan (or the typed error)
 * out. No grid, no events, no awaits: each row runs in well under a millisecond.
 *
 * States are written one block a string, `id:size#tag#tag | slice:size#tag@group …`
 * (`@-` for no group); plans are read back one line a step, in the order the applier
 * takes them (see `describe`).
 */
import test from 'ava';
import {
  DuplicateIdError,
  InvalidSliceGridArgumentError,
  planChange,
  SliceGridFullError,
  SliceGridLimitError,
  SliceTooLargeError,
  UnknownBlockError,
  UnknownSliceError,
  type GridPlan,
  type PlanPolicy,
  type PlanRequest,
  type PlanState,
  type SliceRequest,
} from '../../slicegrid/index.js';

function parseSlice(text: string): SliceRequest {
  const [head, group] = text.split('@');
  const [idSize, ...tags] = head!.split('#');
  const [id, size] = idSize!.split(':');
  return { id: id!, size: Number(size), ...(tags.length > 0 ? { tags } : {}), ...(group === undefined ? {} : { group: group === '-' ? null : group }) };
}

function state(...blocks: string[]): PlanState {
  return {
    blocks: blocks.map((text) => {
      const [head, slices = ''] = text.split('|');
      const [idSize, ...tags] = head!.trim().split('#');
      const [id, size] = idSize!.split(':');
      return { id: id!, size: Number(size), tags, slices: slices.trim() === '' ? [] : slices.trim().split(/\s+/).map(parseSlice) };
    }),
  };
}

const slices = (...texts: string[]): SliceRequest[] => texts.map(parseSlice);

/** The plan, a line a step, in the applier's order. */
function describe(plan: GridPlan): string[] {
  const lines: string[] = [];
  for (const b of plan.newBlocks) {
    if (b.reason === 'min') lines.push(`create ${b.ref}: ${b.size} MB (min)`);
  }
  for (const r of plan.removals) lines.push(`remove ${r.slice} from ${r.block}`);
  if (plan.addBlock) lines.push(`add block ${plan.addBlock.id}: ${plan.addBlock.size} MB${plan.addBlock.tags.map((t) => ` #${t}`).join('')}`);
  const created = new Set(plan.newBlocks.filter((b) => b.reason === 'min').map((b) => b.ref));
  for (const p of plan.placements) {
    const fresh = plan.newBlocks.find((b) => b.ref === p.block);
    if (fresh !== undefined && !created.has(fresh.ref)) {
      created.add(fresh.ref);
      lines.push(`create ${fresh.ref}: ${fresh.size} MB${fresh.tags.map((t) => ` #${t}`).join('')} (full, for ${fresh.slice})`);
    }
    lines.push(p.from === undefined ? `${p.slice} -> ${p.block}` : `${p.slice} ${p.from} -> ${p.block}`);
  }
  if (plan.removeBlock) lines.push(`remove block ${plan.removeBlock}`);
  for (const id of plan.destroys) lines.push(`destroy ${id}`);
  return lines;
}

interface Row {
  name: string;
  state: PlanState;
  request: PlanRequest;
  policy?: PlanPolicy;
  /** The plan as `describe` reads it, or the error class and (part of) its message. */
  expect: string[] | [new (...args: never[]) => Error, RegExp?];
}

const AUTO: PlanPolicy = { autosize: true, blockSize: 1000 };

const rows: Row[] = [
  // --- add -----------------------------------------------------------------------------
  {
    name: 'add: best fit among the blocks there are',
    state: state('a:4096', 'b:4096 | x.old.1:3500', 'c:4096 | x.mid.1:3000'),
    request: { kind: 'add', slices: slices('x.new.1:500') },
    expect: ['x.new.1 -> b'],
  },
  {
    name: 'add: a batch goes largest first, each slice seeing the ones before it',
    state: state('a:1000', 'b:1000'),
    request: { kind: 'add', slices: slices('s1:300', 's2:300', 's3:700', 's4:600', 's5:100') },
    // In arrival order best fit would put 300 and 300 on a, then 700 on b, and 600 nowhere.
    expect: ['s3 -> a', 's4 -> b', 's1 -> a', 's2 -> b', 's5 -> b'],
  },
  {
    name: 'add: equal sizes keep the order asked',
    state: state('a:1000'),
    request: { kind: 'add', slices: slices('z:100@-', 'y:100@-', 'x:100@-') },
    expect: ['z -> a', 'y -> a', 'x -> a'],
  },
  {
    name: 'add: replicas spread over blocks with room before they share',
    state: state('a:4096', 'b:4096', 'c:1000 | x.db.1:900'),
    request: { kind: 'add', slices: slices('shop.web.1:512', 'shop.web.2:512', 'shop.web.3:512') },
    expect: ['shop.web.1 -> a', 'shop.web.2 -> b', 'shop.web.3 -> a'],
  },
  {
    name: 'add: tags are constraints; untagged slices keep off tagged blocks while others have room',
    state: state('r:4096#router | x.router.1:3000#router', 'a:4096'),
    request: { kind: 'add', slices: slices('x.web.1:512', 'x.router.2:100#router') },
    expect: ['x.web.1 -> a', 'x.router.2 -> r'],
  },
  {
    name: 'add: a full grid with autosize plans a new block for the first slice without room',
    state: state('a:1000 | x.db.1:800'),
    request: { kind: 'add', slices: slices('x.web.1:600', 'x.web.2:300', 'x.cache.1:150') },
    policy: AUTO,
    expect: ['create new 1: 1000 MB (full, for x.web.1)', 'x.web.1 -> new 1', 'x.web.2 -> new 1', 'x.cache.1 -> a'],
  },
  {
    name: 'add: as many new blocks as it takes, each tagged as the slice that needed it; spreading comes before keeping tagged blocks free',
    state: state(),
    request: { kind: 'add', slices: slices('a.r.1:700#router', 'a.w.1:700', 'a.w.2:200', 'a.c.1:100') },
    policy: AUTO,
    expect: [
      'create new 1: 1000 MB #router (full, for a.r.1)',
      'a.r.1 -> new 1',
      'create new 2: 1000 MB (full, for a.w.1)',
      'a.w.1 -> new 2',
      'a.w.2 -> new 1',
      'a.c.1 -> new 2',
    ],
  },
  {
    name: 'add: below min, the blocks up to min come first, and slices go on them',
    state: state(),
    request: { kind: 'add', slices: slices('a.w.1:600', 'a.w.2:600') },
    policy: { ...AUTO, min: 2 },
    expect: ['create new 1: 1000 MB (min)', 'create new 2: 1000 MB (min)', 'a.w.1 -> new 1', 'a.w.2 -> new 2'],
  },
  {
    name: 'add: full without autosize',
    state: state('a:1024 | x.db.1:800'),
    request: { kind: 'add', slices: slices('x.web.1:512') },
    expect: [SliceGridFullError, /autosize is off/],
  },
  {
    name: 'add: a batch that cannot all fit is refused whole, naming the slice that does not',
    state: state('a:1000'),
    request: { kind: 'add', slices: slices('s1:600', 's2:600') },
    expect: [SliceGridFullError, /"s2".*fits on no block/],
  },
  {
    name: 'add: no block has the tag',
    state: state('a:4096'),
    request: { kind: 'add', slices: slices('x.router.1:64#router') },
    expect: [SliceGridFullError, /no block has tags router/],
  },
  {
    name: 'add: larger than every block',
    state: state('a:1024'),
    request: { kind: 'add', slices: slices('x.big.1:2048') },
    expect: [SliceTooLargeError, /largest is 1024 MB/],
  },
  {
    name: 'add: larger than the blocks autosize creates',
    state: state(),
    request: { kind: 'add', slices: slices('x.big.1:1001') },
    policy: AUTO,
    expect: [SliceTooLargeError, /raise blockSize/],
  },
  {
    name: 'add: the grid at its max (placeholders count)',
    state: state('a:1000 | x.db.1:900'),
    request: { kind: 'add', slices: slices('x.w.1:900', 'x.w.2:900') },
    policy: { ...AUTO, max: 2 },
    expect: [SliceGridFullError, /"x.w.2".*max of 2 blocks/],
  },
  {
    name: 'add: nothing to create blocks with',
    state: state(),
    request: { kind: 'add', slices: slices('x.w.1:10') },
    policy: { ...AUTO, canCreate: false },
    expect: [SliceGridFullError, /nothing handles 'create'/],
  },
  {
    name: 'add: an id the grid has',
    state: state('a:4096 | x.web.1:64'),
    request: { kind: 'add', slices: slices('x.web.1:64') },
    expect: [DuplicateIdError, /on block "a"/],
  },
  {
    name: 'add: an id twice in one batch',
    state: state('a:4096'),
    request: { kind: 'add', slices: slices('s1:1', 's1:2') },
    expect: [DuplicateIdError, /being placed/],
  },
  {
    name: 'add: a size that is not whole MB',
    state: state('a:4096'),
    request: { kind: 'add', slices: slices('x.web.1:1.5') },
    expect: [InvalidSliceGridArgumentError],
  },
  // --- remove --------------------------------------------------------------------------
  {
    name: 'remove: with autosize, a block left empty is destroyed',
    state: state('a:1000 | a.x.1:900', 'b:1000 | a.y.1:900'),
    request: { kind: 'remove', slices: ['a.y.1'] },
    policy: AUTO,
    expect: ['remove a.y.1 from b', 'destroy b'],
  },
  {
    name: 'remove: never below min',
    state: state('a:1000 | a.x.1:900', 'b:1000 | a.y.1:900'),
    request: { kind: 'remove', slices: ['a.y.1', 'a.x.1'] },
    policy: { ...AUTO, min: 1 },
    expect: ['remove a.y.1 from b', 'remove a.x.1 from a', 'destroy b'],
  },
  {
    name: 'remove: a block that still holds slices stays',
    state: state('a:1000 | a.x.1:400 a.y.1:400'),
    request: { kind: 'remove', slices: ['a.y.1'] },
    policy: AUTO,
    expect: ['remove a.y.1 from a'],
  },
  {
    name: 'remove: without autosize an empty block stays',
    state: state('a:1000 | a.x.1:900'),
    request: { kind: 'remove', slices: ['a.x.1'] },
    expect: ['remove a.x.1 from a'],
  },
  {
    name: 'remove: nothing to destroy blocks with, they stay',
    state: state('a:1000 | a.x.1:900'),
    request: { kind: 'remove', slices: ['a.x.1'] },
    policy: { ...AUTO, canDestroy: false },
    expect: ['remove a.x.1 from a'],
  },
  {
    name: 'remove: an unknown slice',
    state: state('a:1000'),
    request: { kind: 'remove', slices: ['nope'] },
    expect: [UnknownSliceError, /no slice "nope"/],
  },
  // --- move ----------------------------------------------------------------------------
  {
    name: 'move: to a named block; the emptied block goes with autosize',
    state: state('a:1000 | x.web.1:400', 'b:1000 | x.db.1:400'),
    request: { kind: 'move', slice: 'x.web.1', to: 'b' },
    policy: AUTO,
    expect: ['x.web.1 a -> b', 'destroy a'],
  },
  {
    name: 'move: to the block it is on is nothing to do',
    state: state('a:1000 | x.web.1:400'),
    request: { kind: 'move', slice: 'x.web.1', to: 'a' },
    expect: [],
  },
  {
    name: 'move: to a block without its tags',
    state: state('a:1000', 'r:1000#router | x.router.1:100#router'),
    request: { kind: 'move', slice: 'x.router.1', to: 'a' },
    expect: [InvalidSliceGridArgumentError, /lacks \[router\]/],
  },
  {
    name: 'move: to a block without room',
    state: state('a:1000 | x.web.1:400', 'b:300'),
    request: { kind: 'move', slice: 'x.web.1', to: 'b' },
    expect: [SliceGridFullError, /300 MB free/],
  },
  {
    name: 'move: to an unknown block',
    state: state('a:1000 | x.web.1:400'),
    request: { kind: 'move', slice: 'x.web.1', to: 'zz' },
    expect: [UnknownBlockError],
  },
  // --- add-block, remove-block -------------------------------------------------------------
  {
    name: 'add-block: a server the caller has',
    state: state('a:1000'),
    request: { kind: 'add-block', block: { id: 'm', size: 500, tags: ['ssd'] } },
    expect: ['add block m: 500 MB #ssd'],
  },
  {
    name: 'add-block: not above max',
    state: state('a:1000', 'b:1000'),
    request: { kind: 'add-block', block: { id: 'm', size: 500 } },
    policy: { max: 2 },
    expect: [SliceGridLimitError, /max of 2/],
  },
  {
    name: 'add-block: an id the grid has',
    state: state('a:1000'),
    request: { kind: 'add-block', block: { id: 'a', size: 500 } },
    expect: [DuplicateIdError],
  },
  {
    name: 'remove-block: its slices move off first, largest first, then it leaves (no destroy)',
    state: state('old:1000 | a.y.1:200 a.x.1:700', 'b:1000 | z.z.1:100', 'c:1000 | z.q.1:250'),
    request: { kind: 'remove-block', block: 'old' },
    policy: AUTO,
    expect: ['a.x.1 old -> c', 'a.y.1 old -> b', 'remove block old'],
  },
  {
    name: 'remove-block: with autosize, blocks are created for what does not fit elsewhere',
    state: state('old:1000 | a.x.1:700 a.y.1:200'),
    request: { kind: 'remove-block', block: 'old' },
    policy: AUTO,
    expect: ['create new 1: 1000 MB (full, for a.x.1)', 'a.x.1 old -> new 1', 'a.y.1 old -> new 1', 'remove block old'],
  },
  {
    name: 'remove-block: never below min',
    state: state('a:1000'),
    request: { kind: 'remove-block', block: 'a' },
    policy: { min: 1 },
    expect: [SliceGridLimitError, /min is 1/],
  },
  {
    name: 'remove-block: without autosize, onto the blocks there are',
    state: state('a:1000', 'b:500 | big:100'),
    request: { kind: 'remove-block', block: 'b' },
    expect: ['big b -> a', 'remove block b'],
  },
  {
    name: 'remove-block: refused when its slices fit nowhere else',
    state: state('a:1000 | big:800', 'b:500'),
    request: { kind: 'remove-block', block: 'a' },
    expect: [SliceGridFullError, /"big" \(800 MB\) fits on no block/],
  },
  // --- fill, shrink --------------------------------------------------------------------
  {
    name: 'fill: up to min with autosize',
    state: state('a:1000'),
    request: { kind: 'fill' },
    policy: { ...AUTO, min: 3 },
    expect: ['create new 1: 1000 MB (min)', 'create new 2: 1000 MB (min)'],
  },
  {
    name: 'fill: nothing without autosize',
    state: state(),
    request: { kind: 'fill' },
    policy: { min: 3 },
    expect: [],
  },
  {
    name: 'shrink: the empty blocks above min go, newest first',
    state: state('a:1000', 'b:1000 | x:1', 'c:1000', 'd:1000'),
    request: { kind: 'shrink' },
    policy: { ...AUTO, min: 2 },
    expect: ['destroy d', 'destroy c'],
  },
];

for (const row of rows) {
  test(`plan: ${row.name}`, (t) => {
    const before = JSON.stringify(row.state);
    const result = planChange(row.state, row.request, row.policy);
    t.is(JSON.stringify(row.state), before, 'the state given is not touched');
    if (typeof row.expect[0] === 'string' || row.expect.length === 0) {
      if (!result.ok) return t.fail(`refused: ${result.error.message}`);
      t.deepEqual(describe(result.plan), row.expect);
    } else {
      const [type, message] = row.expect as [new (...args: never[]) => Error, RegExp?];
      if (result.ok) return t.fail(`planned: ${describe(result.plan).join('; ')}`);
      t.true(result.error instanceof type, `${result.error.name}: ${result.error.message}`);
      if (message !== undefined) t.regex(result.error.message, message);
    }
  });
}

test('plan: the whole shape of a plan', (t) => {
  const result = planChange(state('a:1000 | x.db.1:800'), { kind: 'add', slices: slices('x.web.1:600', 'x.web.2:300#ssd', 'x.c.1:150') }, AUTO);
  t.deepEqual(result, {
    ok: true,
    plan: {
      newBlocks: [
        { ref: 'new 1', size: 1000, tags: [], reason: 'full', slice: 'x.web.1', slices: ['x.web.1'] },
        { ref: 'new 2', size: 1000, tags: ['ssd'], reason: 'full', slice: 'x.web.2', slices: ['x.web.2'] },
      ],
      placements: [
        { slice: 'x.web.1', size: 600, block: 'new 1' },
        { slice: 'x.web.2', size: 300, block: 'new 2' },
        { slice: 'x.c.1', size: 150, block: 'a' },
      ],
      removals: [],
      destroys: [],
    },
  });
});

test('plan: a bad state or policy is a thrown argument error, not a refusal', (t) => {
  t.throws(() => planChange(state('a:1000 | big:2000'), { kind: 'fill' }), { instanceOf: InvalidSliceGridArgumentError, message: /does not fit/ });
  t.throws(() => planChange(state(), { kind: 'fill' }, { autosize: true }), { instanceOf: InvalidSliceGridArgumentError, message: /blockSize/ });
});

test('plan: the table runs in milliseconds', (t) => {
  const start = process.hrtime.bigint();
  for (let i = 0; i < 10; i++) for (const row of rows) planChange(row.state, row.request, row.policy);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.true(ms < 10 * rows.length, `${rows.length * 10} plans in ${ms.toFixed(1)} ms`);
});
