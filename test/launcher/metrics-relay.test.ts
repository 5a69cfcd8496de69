// The metrics relay against a real etcd and the real docker engine: a source and its sink run as
// element containers (the runtime image with a tiny class), each with a control key in its env;
// the relay finds them through docker, reads their counters and puts each instance's record in
// etcd under the lease it was given; a removed container's key goes. Plus the pure arithmetic
// of a record from two readings.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lease } from 'etcd3';
import {
  buildElementImage, elementMetrics, figuresOf, keys, networkName, removeContainer, RUNTIME_MAIN, startAgent, startContainer, startMetricsRelay,
  type AgentSettings, type ElementMetrics, type MetricsRelay, type RunningContainer, type StatsSnapshot,
} from '../../launcher/index.js';
import { newControlKey, type ElementStats, type PortStats, type Wiring } from '../../runtime/index.js';
import { docker } from '../support/docker.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { until } from '../support/until.js';

const tag = `quarry/mrelay${process.pid}-class:test`;
const folder = mkdtempSync(join(tmpdir(), 'quarry-mrelay-class-'));
const key = newControlKey();
const started: string[] = [];
const stacks: string[] = [];
let etcd: TestEtcd;

// The source makes a log every few ms for as long as it runs; the sink takes them.
writeFileSync(join(folder, 'source.mjs'), `import { element } from 'quarry/runtime';
export default element({
  async *generate() {
    for (let i = 0; ; i++) {
      yield { id: i };
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
  },
});
`);
writeFileSync(join(folder, 'sink.mjs'), `import { element } from 'quarry/runtime';
export default element({ async onPush() {} });
`);

test.before(async () => {
  etcd = await startEtcd();
  await buildElementImage(docker, { folder, tag, main: 'sink.mjs' });
});

test.after.always(async () => {
  for (const id of started) await removeContainer(docker, id, 0).catch(() => undefined);
  for (const stack of stacks) await docker.getNetwork(networkName(stack)).remove().catch(() => undefined);
  await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
  await etcd?.stop();
  rmSync(folder, { recursive: true, force: true });
});

async function runElement(stack: string, name: string, member: number, code: string, wiring: Wiring): Promise<RunningContainer> {
  const c = await startContainer(docker, {
    stack, name, kind: 'element', n: member + 1, member, image: tag, memoryMb: 256, aliases: [`${name}.${member}`],
    command: ['node', RUNTIME_MAIN, `/app/${code}`],
    env: { QUARRY_WIRING: JSON.stringify(wiring), QUARRY_CONTROL_KEY: key },
  });
  started.push(c.id);
  await until(`${c.name} is ready`, async () => {
    const out = ((await docker.getContainer(c.id).logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('utf8');
    return out.includes('"quarry":"ready"') || undefined;
  }, 60_000);
  return c;
}

/** The record at a key and the lease it is under ('0': none), or undefined when there is none. */
async function recordAt(k: string): Promise<{ record: ElementMetrics; lease: string } | undefined> {
  const response = await etcd.client.getAll().prefix(k).exec();
  const kv = response.kvs.find((x) => x.key.toString() === k);
  return kv ? { record: JSON.parse(kv.value.toString()) as ElementMetrics, lease: kv.lease } : undefined;
}

test.serial('the relay puts each element container\'s figures under the lease, and deletes a removed one\'s key', async (t) => {
  const stack = `mrelay${process.pid}a`;
  stacks.push(stack);
  const control = 'tcp://0.0.0.0:7000';
  const sink = await runElement(stack, 'sink', 0, 'sink.mjs', {
    stack, element: 'sink', member: 0, members: 1, control, ports: { in: { kind: 'push', dir: 'in', bind: 'tcp://0.0.0.0:7001' } },
  });
  const src = await runElement(stack, 'src', 0, 'source.mjs', {
    stack, element: 'src', member: 0, members: 1, control, defaults: { batch: 10, flushMs: 5 },
    ports: { out: { kind: 'push', dir: 'out', targets: [{ element: 'sink', port: 'in', members: [{ id: 'sink.0', endpoint: `tcp://sink.0:7001` }] }] } },
  });

  const lease: Lease = etcd.client.lease(30);
  const leaseId = await lease.grant();
  const log: string[] = [];
  const relay: MetricsRelay = startMetricsRelay({
    etcd: etcd.client, docker, server: 'test-server', lease, intervalMs: 500,
    cares: (s) => s === stack, log: (line) => log.push(line),
  });
  t.teardown(async () => {
    await relay.stop();
    await lease.revoke().catch(() => undefined);
  });
  const explain = () => `relay:\n${log.join('\n')}`;

  const sinkKey = keys.elementMetrics(stack, 'sink', 0);
  const srcKey = keys.elementMetrics(stack, 'src', 0);
  const fromSink = await until('the sink\'s record has a rate', async () => {
    const got = await recordAt(sinkKey);
    return got && got.record.rate > 0 ? got : undefined;
  }, 60_000).catch((err: Error) => { throw new Error(`${err.message}\n${explain()}`); });
  const fromSrc = await until('the source\'s record has a rate', async () => {
    const got = await recordAt(srcKey);
    return got && got.record.ports.out!.rate > 0 ? got : undefined;
  }, 60_000).catch((err: Error) => { throw new Error(`${err.message}\n${explain()}`); });

  for (const [got, element] of [[fromSink, 'sink'], [fromSrc, 'src']] as const) {
    const r = got.record;
    t.is(got.lease, leaseId, `${element}'s key is under the lease given`);
    t.like(r, { stack, element, replica: 0, server: 'test-server' });
    t.true(typeof r.incarnation === 'string' && r.incarnation !== '');
    t.false(Number.isNaN(Date.parse(r.at)));
    t.true(r.intervalMs > 0, `${element}: the rates cover an interval`);
    t.true(r.busy >= 0 && r.busy <= 1, `${element}: busy ${r.busy}`);
    t.true(r.busySeconds >= 0);
  }
  const s = fromSink.record;
  t.true(s.processed > 0 && s.processed === s.ports.in!.total);
  t.like(s.ports.in, { kind: 'push', dir: 'in' });
  t.true(s.ports.in!.rate > 0);
  t.is(typeof s.ports.in!.queued, 'number');
  t.is(typeof s.ports.in!.backpressure, 'boolean');
  const o = fromSrc.record;
  t.like(o.ports.out, { kind: 'push', dir: 'out' });
  t.true(o.ports.out!.total > 0);
  t.is(o.processed, 0, 'a source handles nothing');
  t.false(log.some((l) => l.includes(key)), 'the control key is never logged');

  // The sink's container goes: its key goes; the source's stays.
  await removeContainer(docker, sink.id, 0);
  await until('the removed sink\'s key is deleted', async () => ((await recordAt(sinkKey)) === undefined ? true : undefined), 30_000)
    .catch((err: Error) => { throw new Error(`${err.message}\n${explain()}`); });
  t.truthy(await recordAt(srcKey), 'the source still has its record');

  // Stopping the relay takes its keys away.
  await relay.stop();
  t.is(await recordAt(srcKey), undefined, 'the relay deletes its keys when it stops');
  await removeContainer(docker, src.id, 0);
});

/** A port's counters; those of issue 17 (queue, percentiles) only where given, as an older runtime answers. */
test.serial('the agent publishes its engine\'s element figures under its own lease', async (t) => {
  const stack = `mrelay${process.pid}b`;
  stacks.push(stack);
  const sink = await runElement(stack, 'sink', 0, 'sink.mjs', {
    stack, element: 'sink', member: 0, members: 1, control: 'tcp://0.0.0.0:7000', ports: { in: { kind: 'push', dir: 'in', bind: 'tcp://0.0.0.0:7001' } },
  });
  const src = await runElement(stack, 'src', 0, 'source.mjs', {
    stack, element: 'src', member: 0, members: 1, defaults: { batch: 10, flushMs: 5 },
    ports: { out: { kind: 'push', dir: 'out', targets: [{ element: 'sink', port: 'in', members: [{ id: 'sink.0', endpoint: 'tcp://sink.0:7001' }] }] } },
  });
  const stateDir = mkdtempSync(join(tmpdir(), 'quarry-mrelay-agent-'));
  const settings: AgentSettings = {
    server: `mrelay-${process.pid}`, etcd: [etcd.endpoint], address: '192.0.2.1', ttlSeconds: 5,
    loadIntervalMs: 1000, dockerSocket: '/var/run/docker.sock', filesRoot: undefined,
    hostsFile: undefined, stateDir, tls: undefined, locknet: undefined, caretaker: false,
  };
  const lines: string[] = [];
  const agent = startAgent({ settings, log: (l) => lines.push(l), etcd: etcd.client, careStack: stack });
  t.teardown(async () => {
    await agent.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  await agent.registered;
  const sinkKey = keys.elementMetrics(stack, 'sink', 0);
  const got = await until('the sink\'s record has a rate', async () => {
    const r = await recordAt(sinkKey);
    return r && r.record.rate > 0 ? r : undefined;
  }, 60_000).catch((err: Error) => { throw new Error(`${err.message}\n${lines.join('\n')}`); });
  t.like(got.record, { stack, element: 'sink', replica: 0, server: settings.server });
  const server = await etcd.client.get(`/quarry/servers/${settings.server}`).exec();
  t.not(got.lease, '0');
  t.is(got.lease, server.kvs[0]!.lease, 'under the agent\'s lease');
  // The source has no control socket: no record, and it is said once.
  t.is(await recordAt(keys.elementMetrics(stack, 'src', 0)), undefined);
  t.is(lines.filter((l) => l.startsWith(`metrics: ${src.name} has no control socket`)).length, 1, lines.join('\n'));

  await agent.stop();
  t.is(await recordAt(sinkKey), undefined, 'the record goes with the agent');
  await removeContainer(docker, sink.id, 0);
  await removeContainer(docker, src.id, 0);
});

const port = (p: Partial<PortStats> & Pick<PortStats, 'kind' | 'dir'>): PortStats => ({
  logsIn: 0, logsOut: 0, logsAcked: 0, batchesIn: 0, batchesOut: 0, batchesResent: 0, blockedMs: 0, heldLogs: 0, heldLogsMax: 0,
  queries: 0, queryErrors: 0, queryTimeouts: 0, latency: { count: 0, meanMs: 0, maxMs: 0 }, peers: [], ...p,
}) as PortStats;

const reading = (incarnation: string, uptimeMs: number, at: number, ports: Record<string, PortStats>, busyMs?: number): StatsSnapshot => ({
  at, stats: { element: 'e', member: 2, incarnation, uptimeMs, ports, ...(busyMs !== undefined && { busyMs }) } as ElementStats,
});

const who = { stack: 's', element: 'e', replica: 2, server: 'x' };

test('elementMetrics: rates over the real interval, busy clamped, counters missing taken as none', (t) => {
  const before = reading('i1', 10_000, 1_000_000, {
    in: port({ kind: 'push', dir: 'in', logsIn: 100 }),
    ask: port({ kind: 'query', dir: 'in', queries: 10 }),
    out: port({ kind: 'push', dir: 'out', logsOut: 50 }),
  }, 1000);
  const now = reading('i1', 12_000, 1_002_100, {
    in: port({ kind: 'push', dir: 'in', logsIn: 500, queued: 7, queueLimit: 64, backpressure: true }),
    ask: port({ kind: 'query', dir: 'in', queries: 30, latencyP50Ms: 1.5, latencyP99Ms: 9 }),
    out: port({ kind: 'push', dir: 'out', logsOut: 250, blockedMs: 500 }),
  }, 2000);
  const m = elementMetrics(who, now, before);
  t.like(m, { ...who, incarnation: 'i1', intervalMs: 2000, processed: 500, busySeconds: 2, busy: 0.5, rate: 200 });
  t.is(m.at, new Date(1_002_100).toISOString());
  t.deepEqual(m.ports.in, { kind: 'push', dir: 'in', rate: 200, total: 500, queued: 7, queueLimit: 64, backpressure: true });
  // Blocked 500 ms of the 2000 ms interval: a quarter.
  t.deepEqual(m.ports.out, { kind: 'push', dir: 'out', rate: 100, total: 250, blocked: 0.25 });
  t.deepEqual(m.ports.ask, { kind: 'query', dir: 'in', rate: 0, total: 0, queued: 0, backpressure: false, queryRate: 10, p50Ms: 1.5, p99Ms: 9 });

  // Busy beyond the interval (clock jitter) is 1; no busyMs at all is 0.
  t.is(elementMetrics(who, reading('i1', 12_000, 0, {}, 5000), before).busy, 1);
  t.is(elementMetrics(who, reading('i1', 12_000, 0, {}), reading('i1', 10_000, 0, {})).busy, 0);
});

test('elementMetrics: a first reading, or a new incarnation, has rates 0 until the next', (t) => {
  const now = reading('i2', 500, 2000, { in: port({ kind: 'push', dir: 'in', logsIn: 40 }) }, 300);
  for (const before of [undefined, reading('i1', 90_000, 1000, { in: port({ kind: 'push', dir: 'in', logsIn: 9000 }) }, 80_000)]) {
    const m = elementMetrics(who, now, before);
    t.like(m, { incarnation: 'i2', intervalMs: 0, processed: 40, busySeconds: 0.3, busy: 0, rate: 0 });
    t.like(m.ports.in, { rate: 0, total: 40 });
  }
});

test('figuresOf: what the autoscale controller reads of a record', (t) => {
  const before = reading('i1', 10_000, 1_000_000, { in: port({ kind: 'push', dir: 'in', logsIn: 100 }), out: port({ kind: 'push', dir: 'out', logsOut: 50 }) }, 1000);
  const now = reading('i1', 11_000, 1_001_000, {
    in: port({ kind: 'push', dir: 'in', logsIn: 180, queued: 12 }), out: port({ kind: 'push', dir: 'out', logsOut: 130, blockedMs: 900 }),
  }, 1500);
  t.deepEqual(figuresOf(elementMetrics(who, now, before)), {
    element: 'e', replica: 2, incarnation: 'i1', at: 1_001_000, intervalMs: 1000, processed: 180, busySeconds: 1.5,
    ports: { in: { kind: 'push', dir: 'in', rate: 80, queued: 12 }, out: { kind: 'push', dir: 'out', rate: 80, blocked: 0.9 } },
  });
});
