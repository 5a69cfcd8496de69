import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  CONTROL_KEY_ENV, CONTROL_REFUSED, ControlGate, connect, element, newControlKey, readStats, sendPeers, type Log, type Wiring,
} from '../../runtime/index.js';
import { freePort } from '../support/ports.js';
import { spawnElement } from './process.js';
import { ipc, range, run, sinkWiring, sourceWiring, target, until } from './wiring.js';

const tcp = async () => `tcp://127.0.0.1:${await freePort()}`;

/** source (in this process) → categorize (a real element process with a control socket) → sink A; sink B waits. */
async function stackWithControl(t: Parameters<typeof spawnElement>[0], env: NodeJS.ProcessEnv) {
  const [mid, a, b, control] = [await tcp(), await tcp(), await tcp(), await tcp()];
  const gotA: Log[] = [];
  const gotB: Log[] = [];
  await run(t, element({ onPush: (_p, logs) => void gotA.push(...logs) }), sinkWiring(a));
  await run(t, element({ onPush: (_p, logs) => void gotB.push(...logs) }), sinkWiring(b));
  const wiring: Wiring = {
    element: 'categorize',
    control,
    ports: {
      in: { kind: 'push', dir: 'in', bind: mid },
      out: { kind: 'push', dir: 'out', targets: [target([a])], batch: 10, flushMs: 1 },
    },
  };
  const categorize = await spawnElement(t, 'test/runtime/elements/categorizer', wiring, env);
  let more!: () => void;
  const later = new Promise<void>((r) => (more = r));
  const source = await run(t, element({
    async *generate() {
      yield range(50).map((i) => ({ i, path: `f${i}.md` }));
      await later;
      yield range(50).map((i) => ({ i: 50 + i, path: `f${50 + i}.md` }));
    },
  }), sourceWiring([target([mid])], { batch: 10, flushMs: 1 }));
  return { categorize, source, control, a, b, gotA, gotB, more };
}

/** A request with no key at all, sent as any node could (a query out port aimed at the control socket). */
async function askWithoutKey(t: { teardown(fn: () => unknown): void }, control: string, request: unknown): Promise<unknown> {
  const ports = await connect({ element: 'stranger', ports: { c: { kind: 'query', dir: 'out', targets: [target([control], undefined, 'x', '$control')] } } });
  t.teardown(() => ports.close());
  return ports.ask('c', request as never, { timeoutMs: 2000 });
}

test('the control socket answers only its key: no key or a wrong one gets nothing and changes nothing', async (t) => {
  const key = newControlKey();
  const s = await stackWithControl(t, { [CONTROL_KEY_ENV]: key });
  await until(() => s.gotA.length === 50, 'the first fifty at sink A');

  // Without a key, and with wrong ones (another key, one of another length, a non-string): refused.
  await t.throwsAsync(askWithoutKey(t, s.control, { op: 'stats' }), { message: new RegExp(CONTROL_REFUSED) });
  await t.throwsAsync(askWithoutKey(t, s.control, { op: 'peers', port: 'out', targets: [target([s.b])] }), { message: new RegExp(CONTROL_REFUSED) });
  for (const wrong of [newControlKey(), key.slice(1), '', `${key}x`]) {
    await t.throwsAsync(readStats(s.control, { key: wrong }), { message: new RegExp(CONTROL_REFUSED) }, `stats with a wrong key (${wrong.length} chars)`);
    await t.throwsAsync(sendPeers(s.control, 'out', [target([s.b])], { key: wrong }), { message: new RegExp(CONTROL_REFUSED) });
  }
  await t.throwsAsync(askWithoutKey(t, s.control, { op: 'endpoints', key: 42 }), { message: new RegExp(CONTROL_REFUSED) });

  // Nothing changed: the peers are as wired, and data keeps flowing to sink A only.
  const stats = await readStats(s.control, { key });
  t.is(stats.element, 'categorize');
  t.deepEqual(stats.ports.out!.peers, [s.a], 'the refused peers changed nothing');
  s.more();
  await s.source.sourceDone;
  await until(() => s.gotA.length === 100, 'all hundred at sink A');
  t.is(s.gotB.length, 0, 'nothing reached the stranger\'s sink');

  // The key in the env never shows in the process's arguments.
  const argv = readFileSync(`/proc/${s.categorize.child.pid}/cmdline`, 'utf8');
  t.false(argv.includes(key), 'the key is not in argv');
});

test('with the right key the control socket moves the output to new peers', async (t) => {
  const key = newControlKey();
  const s = await stackWithControl(t, { [CONTROL_KEY_ENV]: key });
  await until(() => s.gotA.length === 50, 'the first fifty at sink A');
  await sendPeers(s.control, 'out', [target([s.b])], { key });
  t.deepEqual((await readStats(s.control, { key })).ports.out!.peers, [s.b]);
  s.more();
  await s.source.sourceDone;
  await until(() => s.gotB.length === 50, 'the second fifty at sink B');
  t.deepEqual(s.gotB.map((l) => l.i), range(50).map((i) => 50 + i));
  t.is(s.gotA.length, 50);
});

test('an element started without a control key refuses every control request', async (t) => {
  const s = await stackWithControl(t, { [CONTROL_KEY_ENV]: '' });
  await until(() => s.gotA.length === 50, 'the first fifty at sink A');
  await t.throwsAsync(readStats(s.control, { key: '' }), { message: new RegExp(CONTROL_REFUSED) });
  await t.throwsAsync(askWithoutKey(t, s.control, { op: 'stats' }), { message: new RegExp(CONTROL_REFUSED) });
  await t.throwsAsync(sendPeers(s.control, 'out', [target([s.b])], { key: 'anything' }), { message: new RegExp(CONTROL_REFUSED) });
  s.more();
  await s.source.sourceDone;
  await until(() => s.gotA.length === 100, 'all hundred at sink A');
  t.is(s.gotB.length, 0);
});

test('refusals are logged at most once per few seconds, never with the key or what was offered', async (t) => {
  const lines: string[] = [];
  let now = 0;
  const gate = new ControlGate('s3cret-key', (line) => lines.push(line), () => now);
  for (const offered of ['guess-one', 'guess-two', 'guess-three']) t.false(gate.admits({ op: 'stats', key: offered }));
  t.is(lines.length, 1, 'one line for a burst');
  now += 1000;
  t.false(gate.admits({ op: 'stats' }));
  t.is(lines.length, 1);
  now += 5000;
  t.false(gate.admits({ op: 'stats', key: 'guess-four' }));
  t.is(lines.length, 2);
  t.regex(lines[1]!, /refused 2 control requests/);
  t.true(gate.admits({ op: 'stats', key: 's3cret-key' }));
  for (const line of lines) t.false(/s3cret|guess/.test(line), line);
  const none = new ControlGate(undefined);
  t.false(none.admits({ op: 'stats', key: '' }));
  t.false(none.admits({ op: 'stats', key: 'undefined' }));
});

test('an element in this process takes its key as a start option', async (t) => {
  const control = ipc();
  const end = ipc();
  await run(t, element({ onPush: () => {} }), sinkWiring(end));
  await run(t, element({ *generate() { yield { n: 1 }; } }), { ...sourceWiring([target([end])]), control }, { controlKey: 'k', log: () => {} });
  t.is((await readStats(control, { key: 'k' })).element, 'source');
  await t.throwsAsync(readStats(control, { key: 'K' }), { message: new RegExp(CONTROL_REFUSED) });
});

test('the plan names the same env var as the runtime reads (the plan keeps its own copy so as not to load the runtime\'s code)', async (t) => {
  const plan = await import('../../plan/index.js');
  const runtime = await import('../../runtime/index.js');
  t.is(plan.CONTROL_KEY_ENV, runtime.CONTROL_KEY_ENV);
});
