/**
 * bench:flow — a three-element push pipeline (source → map → sink, three processes started by
 * the element launcher) against the same three stages over bare ZeroMQ PUSH/PULL, carrying the
 * same logs in the same batches, in the same run; rounds alternate and the best of each counts.
 * Last line: JSON with rawLogsPerSec and pipelineLogsPerSec.
 *
 *   FLOW_LOGS=500000 FLOW_BATCH=256 FLOW_ROUNDS=3 npm run bench:flow
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Wiring } from '../runtime/index.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const N = Number(process.env.FLOW_LOGS ?? 500_000);
const BATCH = Number(process.env.FLOW_BATCH ?? 256);
const ROUNDS = Number(process.env.FLOW_ROUNDS ?? 3);

interface Line {
  bench?: string;
  quarry?: string;
  event?: string;
  at?: number;
  count?: number;
  words?: number;
  endpoint?: string;
  endpoints?: Record<string, string>;
}

interface Proc {
  child: ChildProcess;
  next(pred: (l: Line) => boolean): Promise<Line>;
}

function start(args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const seen: Line[] = [];
  const waiting: { pred: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      return;
    }
    const i = waiting.findIndex((w) => w.pred(line));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(line);
    else seen.push(line);
  });
  return {
    child,
    next: (pred) =>
      new Promise((resolve, reject) => {
        const i = seen.findIndex(pred);
        if (i >= 0) return resolve(seen.splice(i, 1)[0]!);
        waiting.push({ pred, resolve });
        child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
      }),
  };
}

const isEvent = (event: string) => (l: Line) => l.event === event;
const isReady = (l: Line) => l.quarry === 'ready';
const expectedWords = N * 3;

function stopAll(procs: Proc[]): Promise<unknown> {
  return Promise.all(
    procs.map(
      (p) =>
        new Promise((resolve) => {
          if (p.child.exitCode !== null) return resolve(null);
          p.child.once('exit', resolve);
          p.child.kill('SIGKILL');
        }),
    ),
  );
}

async function runRaw(): Promise<number> {
  const sink = start(['bench/flow/raw.ts', 'sink', String(N)]);
  const sinkAt = (await sink.next(isEvent('ready'))).endpoint!;
  const map = start(['bench/flow/raw.ts', 'map', sinkAt]);
  const mapAt = (await map.next(isEvent('ready'))).endpoint!;
  const source = start(['bench/flow/raw.ts', 'source', mapAt, String(N), String(BATCH)]);
  const begun = (await source.next(isEvent('start'))).at!;
  const done = await sink.next(isEvent('done'));
  await stopAll([source, map, sink]);
  if (done.words !== expectedWords) throw new Error(`raw: ${done.words} words, ${expectedWords} expected`);
  return N / ((done.at! - begun) / 1000);
}

function wiring(element: string, ports: Wiring['ports'], config: Record<string, unknown>): string {
  return JSON.stringify({ element, config, defaults: { batch: BATCH }, ports } satisfies Wiring);
}

const to = (endpoint: string, element: string) => [{ element, port: 'in', members: [{ id: '0', endpoint }] }];

async function runPipeline(): Promise<number> {
  const launch = (code: string, w: string) => start(['runtime/main.ts', code, '--wiring', w]);
  const sink = launch('bench/flow/sink.ts', wiring('sink', { in: { kind: 'push', dir: 'in', bind: 'tcp://127.0.0.1:*' } }, { n: N }));
  const sinkAt = (await sink.next(isReady)).endpoints!.in!;
  const map = launch(
    'bench/flow/map.ts',
    wiring('map', { in: { kind: 'push', dir: 'in', bind: 'tcp://127.0.0.1:*' }, out: { kind: 'push', dir: 'out', targets: to(sinkAt, 'sink') } }, {}),
  );
  const mapAt = (await map.next(isReady)).endpoints!.in!;
  const source = launch('bench/flow/source.ts', wiring('source', { out: { kind: 'push', dir: 'out', targets: to(mapAt, 'map') } }, { n: N, batch: BATCH }));
  const begun = (await source.next(isEvent('start'))).at!;
  const done = await sink.next(isEvent('done'));
  await stopAll([source, map, sink]);
  if (done.words !== expectedWords) throw new Error(`pipeline: ${done.words} words, ${expectedWords} expected`);
  return N / ((done.at! - begun) / 1000);
}

const raw: number[] = [];
const pipeline: number[] = [];
console.log(`bench:flow — ${N} logs in batches of ${BATCH}, source → map → sink, ${ROUNDS} rounds`);
for (let round = 1; round <= ROUNDS; round++) {
  raw.push(await runRaw());
  pipeline.push(await runPipeline());
  console.log(`round ${round}: raw ZeroMQ ${Math.round(raw.at(-1)!)} logs/s, quarry pipeline ${Math.round(pipeline.at(-1)!)} logs/s`);
}
const rawLogsPerSec = Math.round(Math.max(...raw));
const pipelineLogsPerSec = Math.round(Math.max(...pipeline));
const ratio = Math.round((pipelineLogsPerSec / rawLogsPerSec) * 100) / 100;
console.log(`best: raw ${rawLogsPerSec} logs/s, pipeline ${pipelineLogsPerSec} logs/s, ratio ${ratio} (aim: 0.7 or better)`);
console.log(
  JSON.stringify({
    logs: N,
    batch: BATCH,
    rounds: ROUNDS,
    rawLogsPerSec,
    pipelineLogsPerSec,
    ratio,
    rawRuns: raw.map(Math.round),
    pipelineRuns: pipeline.map(Math.round),
  }),
);
