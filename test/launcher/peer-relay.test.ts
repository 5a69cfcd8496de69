// The peer relay against a real etcd and the real docker engine: a source and its sink run as
// element containers (the runtime image with a tiny class); endpoint records are written in etcd
// as HQ writes them; the relay, finding the source through docker, re-points it when the sink
// moves, and every log the source made reaches a sink. Nobody calls sendPeers but the relay.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildElementImage, keys, networkName, removeContainer, RUNTIME_MAIN, startContainer, startPeerRelay,
  type EndpointRecord, type PeerRelay, type RunningContainer,
} from '../../launcher/index.js';
import { newControlKey, readStats, type Wiring } from '../../runtime/index.js';
import { docker } from '../support/docker.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { until } from '../support/until.js';

const tag = `quarry/prelay${process.pid}-class:test`;
const folder = mkdtempSync(join(tmpdir(), 'quarry-relay-class-'));
const key = newControlKey();
const COUNT = 3000;
const started: string[] = [];
const stacks: string[] = [];
let etcd: TestEtcd;

// One class folder, two code files. The source makes `count` logs with ids; told `gateAt`, it
// waits there until its out port's peers are no longer those it started with. The sink prints
// the ids of every batch it takes and, told `stallAfter`, stops acknowledging once it has that
// many (a pending promise alone does not keep node running: the interval does).
writeFileSync(join(folder, 'source.mjs'), `import { element } from 'quarry/runtime';
const peers = (ctx) => JSON.stringify(ctx.stats().ports.out.peers);
export default element({
  async *generate(ctx) {
    const first = peers(ctx);
    for (let i = 0; i < ctx.config.count; i++) {
      if (i === ctx.config.gateAt) while (peers(ctx) === first) await new Promise((r) => setTimeout(r, 20));
      yield { id: i };
    }
  },
});
`);
writeFileSync(join(folder, 'sink.mjs'), `import { element } from 'quarry/runtime';
let taken = 0;
export default element({
  async onPush(_port, logs, ctx) {
    console.log(JSON.stringify({ got: logs.map((l) => l.id) }));
    taken += logs.length;
    if (ctx.config.stallAfter !== undefined && taken >= ctx.config.stallAfter) await new Promise(() => setInterval(() => {}, 60_000));
  },
});
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

const push = { kind: 'push', dir: 'in', bind: 'tcp://0.0.0.0:7001' } as const;

async function runElement(stack: string, name: string, n: number, member: number, code: string, wiring: Wiring, env: Record<string, string> = {}): Promise<RunningContainer> {
  const c = await startContainer(docker, {
    stack, name, kind: 'element', n, member, image: tag, memoryMb: 256, aliases: [`${name}.${member}`],
    command: ['node', RUNTIME_MAIN, `/app/${code}`],
    env: { QUARRY_WIRING: JSON.stringify(wiring), ...env },
  });
  started.push(c.id);
  await until(`${c.name} is ready`, async () => (await output(c)).includes('"quarry":"ready"') || undefined, 60_000);
  return c;
}

async function output(c: RunningContainer): Promise<string> {
  return ((await docker.getContainer(c.id).logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('utf8');
}

/** The ids a sink printed. */
async function idsOf(c: RunningContainer): Promise<number[]> {
  const ids: number[] = [];
  for (const m of (await output(c)).matchAll(/\{"got":\[([0-9,]*)\]\}/g)) if (m[1]) ids.push(...m[1].split(',').map(Number));
  return ids;
}

/**
 * What HQ's writeEndpoints writes: in small mode the container's address on its network and the
 * container ports; on a grid its server's address, the published ports and the server (here the
 * container's own address and port, which the test reaches too, and a server's name).
 */
async function writeRecord(stack: string, member: number, c: RunningContainer, grid: boolean): Promise<void> {
  const record: EndpointRecord = { container: c.name, host: c.ip!, ports: { in: 7001 }, ...(grid && { server: 'test-server' }) };
  await etcd.client.put(keys.endpoint(stack, 'sink', member)).value(JSON.stringify(record));
}

interface Scenario {
  stack: string;
  /** Records as on a grid (with a server: producers reach members by address), else as in small mode (by name). */
  grid: boolean;
  /** Sink A stops acknowledging after this many logs: the source is blocked, with batches at A, when A goes. */
  stallAfter?: number;
  /** The source waits after this many logs until the relay has re-pointed it. */
  gateAt?: number;
}

/**
 * Sink A runs (record written), then the source, wired at A as HQ wires it, with its control
 * key in its env only; the relay is started. Once A has taken its part, sink B starts, A's
 * container is killed, B's record is written and A's deleted. Then every log must reach a
 * sink, and the source must have only B as its peer: the relay told it (nobody else does).
 */
async function move(t: ExecutionContext, s: Scenario): Promise<void> {
  const { stack } = s;
  // Where the source reaches a sink member: as the records say on a grid; by its name in small mode.
  const at = (member: number, c: RunningContainer) => (s.grid ? `tcp://${c.ip}:7001` : `tcp://sink.${member}:7001`);
  stacks.push(stack);
  const sinkWiring = (member: number, config: Record<string, unknown>): Wiring =>
    ({ stack, element: 'sink', member, members: 1, config, ports: { in: push } });
  const a = await runElement(stack, 'sink', 1, 0, 'sink.mjs', sinkWiring(0, s.stallAfter !== undefined ? { stallAfter: s.stallAfter } : {}));
  await writeRecord(stack, 0, a, s.grid);

  const relayLog: string[] = [];
  const relay: PeerRelay = startPeerRelay({ etcd: etcd.client, docker, log: (l) => relayLog.push(l), rescanMs: 2000 });
  let src: RunningContainer | undefined;
  let b: RunningContainer | undefined;
  t.teardown(async () => {
    await relay.stop();
    for (const c of [a, src, b]) if (c) await removeContainer(docker, c.id, 0).catch(() => undefined);
  });

  const sourceWiring: Wiring = {
    stack, element: 'src', member: 0, members: 1, config: { count: COUNT, ...(s.gateAt !== undefined && { gateAt: s.gateAt }) },
    control: 'tcp://0.0.0.0:7000', defaults: { batch: 10, queue: 4, flushMs: 1 },
    ports: { out: { kind: 'push', dir: 'out', targets: [{ element: 'sink', port: 'in', members: [{ id: 'sink.0', endpoint: at(0, a) }] }] } },
  };
  src = await runElement(stack, 'src', 1, 0, 'source.mjs', sourceWiring, { QUARRY_CONTROL_KEY: key });
  const control = `tcp://${src.ip}:7000`;

  const part = s.stallAfter ?? s.gateAt ?? COUNT;
  const fromA = await until(`sink A has taken ${part} logs`, async () => {
    const ids = new Set(await idsOf(a));
    return ids.size >= part ? [...ids] : undefined;
  });
  const before = await readStats(control, { key });
  t.deepEqual(before.ports.out!.peers, [at(0, a)]);
  if (s.stallAfter !== undefined) t.true(before.ports.out!.heldLogs > 0, 'the source has logs A has not acknowledged');
  t.false(relayLog.some((l) => l.includes(src!.name)), `A's record matches the source's wiring: nothing sent\n${relayLog.join('\n')}`);

  // The move: B starts (before A stops, so that it does not get A's address), A's container
  // stops, B's record is written and A's deleted.
  b = await runElement(stack, 'sink', 2, 1, 'sink.mjs', sinkWiring(1, {}));
  await docker.getContainer(a.id).kill();
  await writeRecord(stack, 1, b, s.grid);
  await etcd.client.delete().key(keys.endpoint(stack, 'sink', 0));

  // The relay tells the source on its own; everything the source made reaches a sink.
  const fromB = await until('every log reached a sink', async () => {
    const ids = await idsOf(b!);
    return new Set([...fromA, ...ids]).size >= COUNT ? ids : undefined;
  }, s.stallAfter !== undefined ? 20_000 : 60_000).catch(async (err: Error) => {
    const stats = await readStats(control, { key }).catch((e: Error) => e.message);
    throw new Error(`${err.message}\nB took ${(await idsOf(b!)).length} logs\nrelay:\n${relayLog.join('\n')}\nsource: ${JSON.stringify(stats)}`);
  });
  const all = new Set([...fromA, ...fromB]);
  t.is(all.size, COUNT);
  t.true([...all].every((id) => Number.isInteger(id) && id >= 0 && id < COUNT));
  t.true(fromB.length > 0);

  const after = await until('the source has everything acknowledged', async () => {
    const stats = await readStats(control, { key });
    return stats.ports.out!.heldLogs === 0 && stats.ports.out!.logsAcked >= COUNT ? stats : undefined;
  });
  t.deepEqual(after.ports.out!.peers, [at(1, b)], 'A is gone from the source\'s peers, B is its one member');
  t.is(after.ports.out!.logsOut, COUNT);
  if (s.stallAfter !== undefined) t.true(after.ports.out!.batchesResent > 0, 'A\'s unacknowledged batches went to B again');
  const told = relayLog.filter((l) => l.startsWith(`peers: ${src.name} out now`));
  t.true(told.length >= 1, relayLog.join('\n'));
  t.true(told.at(-1)!.includes(`sink.1=${at(1, b)}`) && !told.at(-1)!.includes('sink.0='), told.join('\n'));
  t.false(relayLog.some((l) => l.includes(key)), 'the control key is never logged');
}

test.serial('grid records: the relay re-points a producer container to its consumer\'s new address, and no log is lost', async (t) => {
  await move(t, { stack: `prelay${process.pid}a`, grid: true, gateAt: COUNT / 2 });
});

test.serial('small-mode records: the relay re-points a producer container by member name, and no log is lost', async (t) => {
  await move(t, { stack: `prelay${process.pid}b`, grid: false, gateAt: COUNT / 2 });
});

// Known failure, in the runtime and not the relay: when a blocked push port (its one member
// stopped acknowledging) gets new members, PushGroup.setMembers respreads the orphaned and
// waiting batches but never places them (runtime/push-group.ts: no place() after the respread
// unless an open batch was sealed), and with no ack and no new batch to come, the port stays
// stuck. One line, `this.place();` after `this.flush();` in setMembers, fixes it (tried on a
// copy: every log then reaches B). Make this `test.serial` once that is in.
test.serial('a producer blocked on a consumer that died is re-pointed, and A\'s unacknowledged logs reach B', async (t) => {
  await move(t, { stack: `prelay${process.pid}c`, grid: true, stallAfter: 500 });
});
