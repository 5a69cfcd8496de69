import test from 'ava';
import {
  ElementCodeError,
  WiringError,
  connect,
  element,
  loadElement,
  parseWiring,
  readStats,
  sendPeers,
  startElement,
  type Log,
} from '../../runtime/index.js';
import { ipc, range, run, sinkWiring, sourceWiring, target, until } from './wiring.js';

test('a handler may destructure its context: emit and config', async (t) => {
  const [mid, end] = [ipc(), ipc()];
  const got: Log[] = [];
  await run(t, element({ onPush: (_p, logs) => void got.push(...logs) }), sinkWiring(end));
  await run(
    t,
    element<{ factor: number }>({
      async onPush(_port, logs, { emit, config }) {
        for (const log of logs) await emit('out', { n: (log.n as number) * config.factor });
      },
    }),
    {
      element: 'times',
      config: { factor: 3 },
      ports: { in: { kind: 'push', dir: 'in', bind: mid }, out: { kind: 'push', dir: 'out', targets: [target([end])], flushMs: 1 } },
    },
  );
  await run(t, element({ *generate() { yield [{ n: 1 }, { n: 2 }]; } }), sourceWiring([target([mid])], { flushMs: 1 }));
  await until(() => got.length === 2, 'two logs');
  t.deepEqual(got, [{ n: 3 }, { n: 6 }]);
});

test('connect() gives a node (not an element) its out ports: ask', async (t) => {
  const ep = ipc();
  await run(t, element({ onQuery: (_p, { q }: { q: string }) => [`hit for ${q}`] }), {
    element: 'index',
    ports: { query: { kind: 'query', dir: 'in', bind: ep } },
  });
  const ports = await connect({ element: 'web', ports: { search: { kind: 'query', dir: 'out', targets: [target([ep], undefined, 'index', 'query')] } } });
  t.teardown(() => ports.close());
  t.deepEqual(await ports.ask('search', { q: 'river' }, { timeoutMs: 2000 }), ['hit for river']);
});

test('the control socket gives the counters and takes new peers: the producer reconnects', async (t) => {
  const [first, second, control] = [ipc(), ipc(), ipc()];
  const gotFirst: Log[] = [];
  const gotSecond: Log[] = [];
  await run(t, element({ onPush: (_p, logs) => void gotFirst.push(...logs) }), sinkWiring(first));
  await run(t, element({ onPush: (_p, logs) => void gotSecond.push(...logs) }), sinkWiring(second));
  let release!: () => void;
  const later = new Promise<void>((r) => (release = r));
  const source = await run(
    t,
    element({
      async *generate() {
        yield range(100).map((i) => ({ i }));
        await later;
        yield range(100).map((i) => ({ i: 100 + i }));
      },
    }),
    { ...sourceWiring([target([first])], { batch: 10 }), control },
    { controlKey: 'the-secret' },
  );
  await until(() => gotFirst.length === 100, 'the first hundred');
  const stats = await readStats(control, { key: 'the-secret' });
  t.is(stats.element, 'source');
  t.is(stats.ports.out!.logsOut, 100);
  t.deepEqual(stats.ports.out!.peers, [first]);
  await sendPeers(control, 'out', [target([second])], { key: 'the-secret' });
  release();
  await source.sourceDone;
  t.is(gotFirst.length, 100);
  t.deepEqual(gotSecond.map((l) => l.i), range(100).map((i) => 100 + i));
});

test('parseWiring reports every fault at once', (t) => {
  const err = t.throws(
    () => parseWiring({ element: '', ports: { a: { kind: 'pull', dir: 'in' }, b: { kind: 'push', dir: 'out', targets: [{ element: 'x', port: 'in', by: 'random', members: [{}] }] } } }),
    { instanceOf: WiringError },
  );
  for (const fault of ['element:', 'ports.a.kind', 'ports.a.bind', 'targets[0].by', 'members[0]']) t.true(err!.message.includes(fault), fault);
  const ok = parseWiring({ element: 'e', ports: { in: { kind: 'push', dir: 'in', bind: 'ipc:///tmp/x' } } });
  t.is(ok.element, 'e');
});

test('loadElement takes a class folder or a file, TypeScript or plain JavaScript', async (t) => {
  const js = await loadElement('test/runtime/elements/file-sink');
  t.is(typeof js.onPush, 'function');
  const ts = await loadElement('test/runtime/elements/indexer/index.ts');
  t.is(typeof ts.onQuery, 'function');
  await t.throwsAsync(loadElement('test/runtime/elements'), { instanceOf: ElementCodeError });
});

test('an element whose code lacks a handler its ports need does not start', async (t) => {
  await t.throwsAsync(startElement(element({}), sinkWiring(ipc())), { instanceOf: ElementCodeError, message: /needs onPush/ });
});
