// From the figures element instances publish to the autoscale controller's readings (issue 17):
// the offered rate read at the producers, unblocked; a history of readings; a stack's input.
import test from 'ava';
import type { StackSpec } from '../../compiler/index.js';
import {
  autoscaleRound, autoscaleSamples, lastSizeChanges, SampleHistory, stackAutoscaleInput,
  type FlowEdge, type InstanceFigures, type MetricSample,
} from '../../plan/index.js';

const NOW = 1_000_000;
const edges: FlowEdge[] = [{ from: 'feed', fromPort: 'out', to: 'work', toPort: 'in' }];

function fig(element: string, replica: number, o: Partial<InstanceFigures> & { out?: [number, number]; in?: [number, number] } = {}): InstanceFigures {
  const ports: InstanceFigures['ports'] = {};
  if (o.out) ports.out = { kind: 'push', dir: 'out', rate: o.out[0], blocked: o.out[1] };
  if (o.in) ports.in = { kind: 'push', dir: 'in', rate: o.in[0], queued: o.in[1] };
  return { element, replica, incarnation: `${element}-${replica}`, at: NOW, intervalMs: 1000, processed: 500, busySeconds: 5, ports, ...o };
}

const offered = (samples: MetricSample[] | undefined) => (samples ?? []).map((s) => [s.member, s.offeredPerSecond]);

test('offered: what the producers send, divided by the share of time their port was open, spread evenly over the members', (t) => {
  const rows: Array<{ name: string; figures: InstanceFigures[]; size: number; want: Array<[string, number]> }> = [
    { name: 'never blocked', figures: [fig('feed', 0, { out: [100, 0] }), fig('work', 0, { in: [100, 0] })], size: 1, want: [['0', 100]] },
    { name: 'blocked half the time: twice what it sends', figures: [fig('feed', 0, { out: [100, 0.5] }), fig('work', 0, { in: [100, 0] }), fig('work', 1, { in: [0, 0] })], size: 2, want: [['0', 100], ['1', 100]] },
    { name: 'blocked all the time: at most 20×', figures: [fig('feed', 0, { out: [10, 1] }), fig('work', 0, { in: [10, 0] })], size: 1, want: [['0', 200]] },
    { name: 'two producer instances add up', figures: [fig('feed', 0, { out: [60, 0] }), fig('feed', 1, { out: [40, 0] }), fig('work', 0, { in: [100, 0] })], size: 1, want: [['0', 100]] },
    { name: 'a member without figures: its share is missing', figures: [fig('feed', 0, { out: [300, 0] }), fig('work', 0, { in: [100, 0] })], size: 3, want: [['0', 100]] },
    { name: 'no producer figures: its own in rate', figures: [fig('work', 0, { in: [70, 5] })], size: 1, want: [['0', 70]] },
    { name: 'stale producer figures: its own in rate', figures: [fig('feed', 0, { out: [300, 0], at: NOW - 10_000 }), fig('work', 0, { in: [70, 0] })], size: 1, want: [['0', 70]] },
    { name: 'a producer\'s first reading (no rates yet) does not count', figures: [fig('feed', 0, { out: [0, 0], intervalMs: 0 }), fig('work', 0, { in: [70, 0] })], size: 1, want: [['0', 70]] },
    { name: 'a member\'s first reading counts when the producers say the rate', figures: [fig('feed', 0, { out: [50, 0] }), fig('work', 0, { in: [0, 0], intervalMs: 0 })], size: 1, want: [['0', 50]] },
    { name: 'a first reading without producers gives nothing', figures: [fig('work', 0, { in: [0, 0], intervalMs: 0 })], size: 1, want: [] },
  ];
  for (const row of rows) {
    const got = autoscaleSamples(edges, row.figures, { work: row.size }, NOW).get('work');
    t.deepEqual(offered(got), row.want, row.name);
  }
});

test('a reading carries the counters, the queue depth over in ports and the incarnation', (t) => {
  const [s] = autoscaleSamples(edges, [fig('work', 2, { in: [10, 42], processed: 900, busySeconds: 9, incarnation: 'abc' })], { work: 1 }, NOW).get('work')!;
  t.deepEqual(s, { member: '2', at: NOW, processed: 900, busySeconds: 9, offeredPerSecond: 10, queueDepth: 42, incarnation: 'abc' });
});

test('the history keeps each reading once, newest last, for keepMs', (t) => {
  const h = new SampleHistory(10_000);
  const sample = (member: string, at: number): MetricSample => ({ member, at, processed: 0, busySeconds: 0, offeredPerSecond: 1, queueDepth: 0 });
  h.add(new Map([['work', [sample('0', NOW), sample('1', NOW)]]]), NOW);
  h.add(new Map([['work', [sample('0', NOW), sample('0', NOW + 1000)]]]), NOW + 1000);
  t.deepEqual(h.samples('work').map((s) => `${s.member}@${s.at - NOW}`), ['0@0', '1@0', '0@1000']);
  h.add(new Map([['work', [sample('0', NOW + 12_000)]]]), NOW + 12_000);
  t.deepEqual(h.samples('work').map((s) => `${s.member}@${s.at - NOW}`), ['0@12000'], 'older than 10 s dropped');
  h.keepOnly(new Set());
  t.deepEqual(h.samples('work'), []);
});

function spec(extra: Partial<StackSpec> = {}): StackSpec {
  return {
    name: 's', env: {}, nodes: [],
    classes: [
      { name: 'src', folder: 'elements/src', ports: {}, memory: 64, shardable: false, cost: 0, dockerfile: false, digest: 'x' },
      { name: 'slow', folder: 'elements/slow', ports: {}, memory: 64, shardable: true, cost: 2, dockerfile: false, digest: 'y' },
    ] as unknown as StackSpec['classes'],
    elements: [
      { name: 'feed', class: 'src', config: {}, memory: 64, scale: 1 },
      { name: 'work', class: 'slow', config: {}, memory: 64, scale: 1, shard: { min: 1, max: 6, by: 'hash:key' } },
      { name: 'more', class: 'slow', config: {}, memory: 64, scale: 3 },
    ],
    connections: [{ kind: 'push', from: { name: 'feed', port: 'out' }, to: { name: 'work', port: 'in' } }],
    ...extra,
  };
}

test('a stack\'s input: load shards with their policy and cost, the cap, and the instances not autoscaled', (t) => {
  const history = new SampleHistory(60_000);
  const input = stackAutoscaleInput(spec({ autoscale: { enabled: true, maxInstances: 9 } }), { sizes: { work: 2, more: 3, feed: 1 }, lastChange: { work: 5 }, history, now: NOW });
  t.deepEqual(input, {
    now: NOW, cap: 9, others: 4,
    elements: [{ element: 'work', policy: { min: 1, max: 6, cost: 2 }, size: 2, lastChange: 5, samples: [] }],
  });
  t.is(stackAutoscaleInput(spec({ autoscale: { enabled: false } }), { sizes: {}, history, now: NOW }), undefined, 'autoscale: {enabled: false}');
  t.is(stackAutoscaleInput(spec({ elements: spec().elements.filter((e) => e.name !== 'work') }), { sizes: {}, history, now: NOW }), undefined, 'no load shard');
});

test('a round feeds the figures into the history, then gives the input', (t) => {
  const history = new SampleHistory(60_000);
  const input = autoscaleRound(spec(), [fig('feed', 0, { out: [150, 0] }), fig('work', 0, { in: [100, 0] }), fig('work', 1, { in: [50, 0] })], { sizes: { work: 2 }, history, now: NOW });
  t.deepEqual(input!.elements[0]!.samples.map((s) => [s.member, s.offeredPerSecond]), [['0', 75], ['1', 75]]);
  t.is(input!.cap, undefined);
});

test('the last change of each unit\'s size: the newest release whose plan started or resized it', (t) => {
  const at = (s: number) => new Date(NOW + s * 1000).toISOString();
  const changes = lastSizeChanges([
    { at: at(0), plan: [{ op: 'DEPLOY', stack: 's', element: 'work', kind: 'element', image: 'i', memory: 1, scale: 1, env: {}, digest: 'd' } as never, { op: 'ENSURE', stack: 's', node: 'db' } as never] },
    { at: at(10), plan: [{ op: 'SCALE', stack: 's', element: 'work', from: 1, to: 3 }] },
    { at: at(20), plan: [{ op: 'ROUTE', stack: 's', node: 'web' } as never] },
    { at: 'not a time', plan: [{ op: 'SCALE', stack: 's', element: 'work', from: 3, to: 4 }] },
  ]);
  t.deepEqual(changes, { work: NOW + 10_000, db: NOW });
});
