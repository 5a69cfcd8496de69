// `quarry top` end to end: the real `quarry` executable against a real `quarry hq` (a child
// process, small mode, its API and control) using a real etcd started here, into which the
// test puts ElementMetrics records itself as the metrics relay would. The stack's release
// (its compiled spec: elements and connections) is written into HQ's home before HQ starts,
// so that no push or image build is needed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import type { HqInfo, TopView } from '../../hq/index.js';
import { StackStore } from '../../hq/deploy/stack-store.js';
import type { ReleaseRecord } from '../../hq/deploy/records.js';
import type { StackSpec } from '../../compiler/index.js';
import { keys, type ElementMetrics, type PortMetrics } from '../../launcher/index.js';
import { run, tempDir, uniqueStack, type Ran } from '../hq/harness.js';
import { repoRoot } from '../support/cli.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { freePort } from '../support/ports.js';

const dir = tempDir('quarry-top-hq-');
const hqHome = new HomeLayout(join(dir, 'hq-home'));
const laptop = new HomeLayout(join(dir, 'laptop-home'));
const stack = uniqueStack('top');

let etcd: TestEtcd;
let hq: { child: ChildProcess; exited: Promise<number | null> } | undefined;
let env: Record<string, string>;

function quarry(argv: string[]): Promise<Ran> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_') && k !== 'NO_COLOR'));
  return run(process.execPath, [join(repoRoot, 'bin/quarry.js'), ...argv], { cwd: dir, env: { ...base, ...env } });
}

const spec = {
  name: stack, env: {}, nodes: [], classes: [],
  elements: [
    { name: 'source', class: 'gen', config: {}, memory: 64, scale: 1 },
    { name: 'parse', class: 'parser', config: {}, memory: 64, scale: 2 },
  ],
  connections: [{ kind: 'push', from: { name: 'source', port: 'out' }, to: { name: 'parse', port: 'in' } }],
} as unknown as StackSpec;

function metrics(element: string, replica: number, atMs: number, rate: number, busy: number, ports: Record<string, PortMetrics>): ElementMetrics {
  return {
    stack, element, replica, server: 'local', incarnation: `${element}${replica}`, at: new Date(atMs).toISOString(), intervalMs: 1000,
    processed: rate * 60, busySeconds: busy * 60, busy, rate, ports,
  };
}

test.before(async () => {
  etcd = await startEtcd();
  const release: ReleaseRecord = {
    stack, version: 1, at: new Date().toISOString(), reason: 'push', description: 'push of 1234567', commit: '1234567'.padEnd(40, '0'),
    spec, env: {}, current: { stack, units: [] }, plan: [],
  };
  new StackStore(hqHome).saveRelease(release);
  const configPath = join(dir, 'hq.json');
  writeFileSync(configPath, JSON.stringify({
    home: hqHome.root, host: '127.0.0.1', apiHost: '127.0.0.1', sshPort: await freePort(), apiPort: await freePort(), routerPort: await freePort(),
    etcd: [etcd.endpoint],
  }));
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
  const child = spawn(process.execPath, [join(repoRoot, 'bin/quarry.js'), 'hq', '--config', `file://${configPath}`], {
    env: { ...base, QUARRY_HOME: hqHome.root }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  hq = { child, exited };
  await new Promise<void>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('ready')) resolve();
    });
    void exited.then((code) => reject(new Error(`quarry hq exited with ${code}:\n${stderr}`)));
  });
  const info = JSON.parse(readFileSync(hqHome.hqInfo, 'utf8')) as HqInfo;
  env = { QUARRY_HQ: info.api, QUARRY_TOKEN: readFileSync(hqHome.token, 'utf8').trim(), QUARRY_HOME: laptop.root };
});

test.after.always(async () => {
  if (hq) {
    hq.child.kill('SIGTERM');
    const stopped = await Promise.race([hq.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
    if (stopped === 'timeout') hq.child.kill('SIGKILL');
  }
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test.serial('top --json: the records put in etcd, through HQ\'s API, summed per element and per connection; stale ones marked', async (t) => {
  const inPort = (rate: number, queued: number, backpressure: boolean): PortMetrics => ({ kind: 'push', dir: 'in', rate, total: rate * 60, queued, queueLimit: 100, backpressure });
  /** The records, read just now (each `quarry` run may take seconds on a loaded machine: they are put fresh before each). */
  const putFresh = async (staleParse2 = false) => {
    const now = Date.now();
    const records = [
      metrics('source', 1, now, 0, 0.05, { out: { kind: 'push', dir: 'out', rate: 150, total: 9000 } }),
      metrics('parse', 1, now, 80, 0.6, { in: inPort(80, 92, true) }),
      metrics('parse', 2, staleParse2 ? now - 60_000 : now, 70, 0.5, { in: inPort(70, 30, false) }),
    ];
    for (const m of records) await etcd.client.put(keys.elementMetrics(stack, m.element, m.replica)).value(JSON.stringify(m));
  };
  await putFresh();

  const r = await quarry(['top', stack, '--json']);
  t.is(r.code, 0, r.stderr);
  const view = JSON.parse(r.stdout) as TopView;
  t.is(view.stack, stack);
  t.is(view.release, 'v1');
  t.is(view.unavailable, undefined);
  t.deepEqual(view.elements.map((e) => [e.name, e.scale, e.rate, e.stale, e.instances.map((i) => [i.replica, i.rate, i.busy, i.stale])]), [
    ['source', 1, 0, false, [[1, 0, 0.05, false]]],
    ['parse', 2, 150, false, [[1, 80, 0.6, false], [2, 70, 0.5, false]]],
  ]);
  t.like(view.connections[0], { from: { name: 'source', port: 'out' }, to: { name: 'parse', port: 'in' }, rate: 150, rateAt: 'in', queued: 92, queueLimit: 100, fill: 0.92, level: 'high', backpressure: true });

  // The only stack: STACK may be left out. Not a terminal: one table, no colour, then exit.
  await putFresh();
  const table = await quarry(['top']);
  t.is(table.code, 0, table.stderr);
  t.notRegex(table.stdout, /\x1b\[/);
  t.regex(table.stdout, new RegExp(`^${stack} v1 `));
  t.regex(table.stdout, /^parse +parser +2\/2 +150 +55%$/m);
  t.regex(table.stdout, /^source\.out -> parse\.in +push +150 +92\/100 +92% !$/m);

  // An instance that stopped reporting: stale, left out of the sums.
  await putFresh(true);
  const later = JSON.parse((await quarry(['top', stack, '--json'])).stdout) as TopView;
  const parse = later.elements.find((e) => e.name === 'parse')!;
  t.is(parse.rate, 80);
  t.deepEqual(parse.instances.map((i) => i.stale), [false, true]);
});

test.serial('top of a stack HQ does not have exits 1 with HQ\'s message; ps still answers', async (t) => {
  const r = await quarry(['top', 'ghost', '--json']);
  t.is(r.code, 1);
  t.regex(r.stderr, /no stack 'ghost' on this HQ/);
  const ps = await quarry(['ps', stack, '--json']);
  t.is(ps.code, 0, ps.stderr);
  t.deepEqual(JSON.parse(ps.stdout), []);
});
