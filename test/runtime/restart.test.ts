import test from 'ava';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { element, newControlKey, readStats, type Wiring } from '../../runtime/index.js';
import { freePort } from '../support/ports.js';
import { spawnElement } from './process.js';
import { range, sinkWiring, sourceWiring, target, until, run } from './wiring.js';

const N = 20000;
const tcp = async () => `tcp://127.0.0.1:${await freePort()}`;

/** The distinct `i` of the logs in a JSON-lines file (a line cut by a kill is skipped). */
function idsIn(file: string): { ids: Set<number>; lines: number } {
  const ids = new Set<number>();
  let lines = 0;
  if (!existsSync(file)) return { ids, lines };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      ids.add((JSON.parse(line) as { i: number }).i);
      lines++;
    } catch {
      // empty or cut
    }
  }
  return { ids, lines };
}

test('a sink process killed mid-stream and restarted loses no log', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'quarry-rt-')), 'sink.jsonl');
  const ep = await tcp();
  const wiring: Wiring = { ...sinkWiring(ep), config: { path: file, delayMs: 2 } };
  let sink = await spawnElement(t, 'test/runtime/elements/file-sink', wiring);
  const source = await run(t, 
    element({ *generate() { for (let i = 0; i < N; i += 50) yield range(50).map((j) => ({ i: i + j })); } }),
    sourceWiring([target([ep])], { batch: 50, queue: 8 }),
  );
  await until(() => idsIn(file).ids.size >= N / 4, 'a quarter of the logs');
  sink.child.kill('SIGKILL');
  await sink.exited;
  const atKill = idsIn(file).ids.size;
  t.true(atKill < N, 'killed mid-stream');
  sink = await spawnElement(t, 'test/runtime/elements/file-sink', wiring);
  await source.sourceDone;
  const { ids, lines } = idsIn(file);
  t.deepEqual([...ids].sort((a, b) => a - b), range(N), 'every log is in the file');
  t.log(`killed at ${atKill} logs; ${lines - N} duplicates after the restart (at least once)`);
  t.true(source.stats().ports.out!.batchesResent > 0, 'unacknowledged batches were sent again');
  sink.child.kill('SIGTERM');
  t.is(await sink.exited, 0, 'SIGTERM stops an element cleanly');
  await source.stop();
});

test('a middle element killed mid-stream and restarted loses no log (acknowledgements are chained)', async (t) => {
  const [mid, end, control] = [await tcp(), await tcp(), await tcp()];
  const got = new Map<number, string>();
  let batches = 0;
  const sink = await run(t, 
    element({
      async onPush(_p, logs) {
        await new Promise((r) => setTimeout(r, 2));
        for (const log of logs) got.set(log.i as number, log.category as string);
        batches++;
      },
    }),
    sinkWiring(end, { queue: 8 }),
  );
  const wiring: Wiring = {
    element: 'categorize',
    control,
    ports: {
      in: { kind: 'push', dir: 'in', bind: mid, queue: 8 },
      out: { kind: 'push', dir: 'out', targets: [target([end])], batch: 50, queue: 8 },
    },
  };
  const key = newControlKey();
  let categorize = await spawnElement(t, 'test/runtime/elements/categorizer', wiring, { QUARRY_CONTROL_KEY: key });
  const source = await run(t, 
    element({ *generate() { for (let i = 0; i < N; i += 50) yield range(50).map((j) => ({ i: i + j, path: `f${i + j}.md`, size: 1 })); } }),
    sourceWiring([target([mid])], { batch: 50, queue: 8 }),
  );
  await until(() => got.size >= N / 4, 'a quarter of the logs');
  const stats = await readStats(control, { key });
  t.is(stats.element, 'categorize');
  t.true(stats.ports.in!.logsIn >= N / 4, 'the control socket gives the counters');
  categorize.child.kill('SIGKILL');
  await categorize.exited;
  t.true(got.size < N, 'killed mid-stream');
  categorize = await spawnElement(t, 'test/runtime/elements/categorizer', wiring, { QUARRY_CONTROL_KEY: key });
  t.not(categorize.ready.incarnation, stats.incarnation, 'a new incarnation');
  await source.sourceDone;
  await until(() => got.size === N, 'every log at the sink');
  t.deepEqual([...got.keys()].sort((a, b) => a - b), range(N));
  t.true([...got.values()].every((c) => c === 'text'));
  t.true(source.stats().ports.out!.batchesResent > 0, 'the source sent again what the dead element had not passed on');
  t.log(`${sink.stats().ports.in!.logsIn - N} duplicates at the sink over ${batches} batches`);
  categorize.child.kill('SIGTERM');
  await categorize.exited;
  await Promise.all([source.stop(), sink.stop()]);
});
