// A server's docker engine over one long-lived SSH connection, against a real docker-provider
// server: many dockerode calls (streaming ones too) as channels of one connection, counted on
// the server's side; images streamed in only when missing, two callers sharing one transfer;
// a wrong host key refused; a dropped connection failing the call in flight by name and the
// next call connecting again; keep-alive noticing a server that stopped answering.
import test from 'ava';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import {
  connectEngine, ensureImage, ImageTransferError, RemoteEngineError, type RemoteEngine,
} from '../../launcher/index.js';
import { createProvider, type DockerServer, type SshTarget } from '../../pacific/index.js';
import { docker as local } from '../support/docker.js';
import { docker as cli, quarryKey, removeFleet, uniqueFleet } from '../pacific/fleet.js';

// One server for the whole file (adding one takes about 2 s and the machine has 2 cores).
const key = quarryKey();
const fleet = uniqueFleet('trem');
const provider = createProvider({ provider: 'docker', fleet, privateKey: key.privateKey, bootTimeoutMs: 150_000 });
const IMAGE = 'quarry/debian:bookworm';
const log: string[] = [];
let server: DockerServer;
let engine: RemoteEngine;

const targetOf = (s: DockerServer): SshTarget => ({ ...s.ssh, privateKey: key.privateKey });

/** The server's established SSH connections, as its own kernel sees them (`ss`, run with the local engine). */
async function sshConnectionsOnServer(): Promise<string[]> {
  const out = await cli(['exec', server.docker.container, 'ss', '-tnH', 'state', 'established', '( sport = :22 )']);
  return out.split('\n').filter((line) => line.trim() !== '');
}

/** How many images the remote engine loaded since `sinceMs`, from its own event log (one clock: one kernel). */
async function loadsSince(remote: Docker, sinceMs: number): Promise<number> {
  const window = { since: Math.floor(sinceMs / 1000) - 1, until: Math.ceil(Date.now() / 1000) + 1 };
  const events = (await remote.getEvents({ ...window, filters: { type: ['image'], event: ['load'] } })) as unknown as Readable;
  let text = '';
  for await (const chunk of events) text += String(chunk);
  const loads = text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as { timeNano: number });
  return loads.filter((event) => event.timeNano / 1e6 >= sinceMs).length;
}

test.before(async () => {
  server = (await provider.add('s-1vcpu-1gb')) as DockerServer;
  engine = await connectEngine(targetOf(server), { name: server.id, log: (line) => log.push(line) });
});

test.after.always(async () => {
  await engine?.close();
  await provider.close();
  await removeFleet(fleet);
});

test.serial('an image is streamed in when missing, then present; two callers at once share one transfer; it runs there', async (t) => {
  const wanted = await local.getImage(IMAGE).inspect();
  const progress: string[] = [];
  const options = { server: server.id, progress: (m: string) => progress.push(m) };

  t.is(await ensureImage(local, engine.docker, IMAGE, options), 'loaded');
  t.regex(progress[0] ?? '', new RegExp(`^loading quarry/debian:bookworm into ${server.id} \\(\\d+ MB\\)$`));
  t.is((await engine.docker.getImage(IMAGE).inspect()).Id, wanted.Id, 'the server has the same image Id');
  t.not(await cli(['exec', server.docker.container, 'docker', 'image', 'inspect', '-f', '{{.Id}}', IMAGE]), '', 'its own docker CLI sees it');

  progress.length = 0;
  const since = Date.now();
  t.is(await ensureImage(local, engine.docker, IMAGE, options), 'present');
  t.deepEqual(progress, [], 'nothing streamed the second time');
  t.is(await loadsSince(engine.docker, since), 0);

  // Gone from the server: two callers at the same time make one transfer.
  await engine.docker.getImage(IMAGE).remove({ force: true });
  const before = Date.now();
  const both = await Promise.all([ensureImage(local, engine.docker, IMAGE, options), ensureImage(local, engine.docker, IMAGE, options)]);
  t.deepEqual(both, ['loaded', 'loaded']);
  t.is(progress.filter((m) => m.startsWith('loading ')).length, 1, progress.join('\n'));
  t.is(await loadsSince(engine.docker, before), 1, 'the server loaded the image once');

  const container = await engine.docker.createContainer({ Image: IMAGE, Cmd: ['true'] });
  await container.start();
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  t.is(StatusCode, 0);
  await container.remove();
  t.is(engine.connections, 1);
});

test.serial('twenty and more dockerode calls, streaming ones too, go over one SSH connection', async (t) => {
  let calls = 0;
  const call = async <T>(p: Promise<T>): Promise<T> => { calls += 1; return p; };

  const info = await call(engine.docker.info());
  t.is(info.Name, server.id, 'the server\'s own engine answers');
  t.not(info.ID, (await local.info()).ID);
  t.regex((await call(engine.docker.version())).Version, /^\d+\./);
  for (let i = 0; i < 5; i += 1) await call(engine.docker.listContainers({ all: true }));
  t.true((await call(engine.docker.listImages())).some((image) => image.RepoTags?.includes(IMAGE)));
  // Ten at once: ten channels of the one connection.
  const many = await Promise.all(Array.from({ length: 10 }, () => call(engine.docker.ping())));
  t.deepEqual(many.map(String), Array(10).fill('OK'));

  const container = await call(engine.docker.createContainer({ Image: IMAGE, Cmd: ['sh', '-c', 'echo hello from $(hostname)'], Hostname: 'inner' }));
  await call(container.start());
  t.is(((await call(container.wait())) as { StatusCode: number }).StatusCode, 0);
  t.is((await call(container.inspect())).State.Status, 'exited');
  const logs = (await call(container.logs({ stdout: true, follow: true }))) as unknown as Readable;
  let output = '';
  for await (const chunk of logs) output += (chunk as Buffer).toString('latin1');
  t.true(output.includes('hello from inner'), JSON.stringify(output));
  await call(container.remove());

  // `docker save` from the server, read slowly (the HTTP client pauses the channel often):
  // every byte arrives, the same bytes as this machine's own `docker save` of that image.
  const slowly = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _encoding, done) { digest.update(chunk); setImmediate(done); },
  });
  const digest = createHash('sha256');
  await pipeline((await call(engine.docker.getImage(IMAGE).get())) as unknown as Readable, slowly);
  const here = createHash('sha256');
  for await (const chunk of (await local.getImage(IMAGE).get()) as unknown as Readable) here.update(chunk as Buffer);
  t.is(digest.digest('hex'), here.digest('hex'));
  t.true(calls >= 20, `${calls} calls`);

  t.is(engine.connections, 1);
  const established = await sshConnectionsOnServer();
  t.is(established.length, 1, established.join('\n'));
  t.deepEqual(log.filter((line) => /connected/.test(line)), [`connected to server ${server.id} (root@${server.address}:22) (SSH connection 1)`]);
});

test.serial('a wrong host key is refused with a RemoteEngineError naming the server address', async (t) => {
  const otherKey = quarryKey().publicKey;
  const error = await t.throwsAsync(connectEngine({ ...targetOf(server), hostKey: otherKey }, { name: server.id }), { instanceOf: RemoteEngineError });
  t.is(error?.reason, 'host-key');
  t.true(error?.message.includes(server.address), error?.message);
  t.log(error?.message);
  t.regex(error?.message ?? '', /host key other than the one pinned/);
});

test.serial('an image missing here is an ImageTransferError that says to build it', async (t) => {
  const missing = `quarry/no-such-image:${fleet}`;
  const error = await t.throwsAsync(ensureImage(local, engine.docker, missing, { server: server.id }), { instanceOf: ImageTransferError });
  t.regex(error?.message ?? '', /is not on this machine's docker engine.*build it first/);
  t.is(error?.image, missing);
});

test.serial('a load the server refuses is an ImageTransferError with the server\'s own message', async (t) => {
  // A local engine whose `docker save` gives something that is not an image archive.
  const fake = {
    getImage: () => ({
      inspect: async () => ({ Id: 'sha256:0000000000000000000000000000000000000000000000000000000000000000', Size: 1000 }),
      get: async () => Readable.from([Buffer.from('this is not a tar archive\n'.repeat(100))]),
    }),
  } as unknown as Docker;
  const error = await t.throwsAsync(ensureImage(fake, engine.docker, 'quarry/garbage:1', { server: server.id }), { instanceOf: ImageTransferError });
  t.log(error?.message);
  t.true(error?.message.startsWith(`${server.id} could not load quarry/garbage:1: `), error?.message);
  t.true((await engine.docker.info()).Name === server.id, 'the engine still answers');
});

test.serial('a dropped connection fails the calls in flight by name; the next call connects again', async (t) => {
  const container = await engine.docker.createContainer({ Image: IMAGE, Cmd: ['sh', '-c', 'echo ready; exec sleep 300'] });
  await container.start();
  const waiting = container.wait();
  const logs = (await container.logs({ stdout: true, follow: true })) as unknown as Readable;
  const logsFailed = new Promise<Error | null>((resolve) => {
    logs.on('error', resolve);
    logs.on('end', () => resolve(null));
  });
  await new Promise<void>((resolve) => logs.once('data', () => resolve())); // both requests are in flight now
  logs.resume();

  // Kill the SSH connection on the server's side (its sshd session processes).
  await cli(['exec', server.docker.container, 'pkill', '-f', 'sshd: root']);

  const failed = await t.throwsAsync(waiting, { instanceOf: RemoteEngineError });
  t.is(failed?.reason, 'lost');
  t.true(failed?.message.includes(server.id) && failed.message.includes(server.address), failed?.message);
  const streamError = await logsFailed;
  t.true(streamError instanceof RemoteEngineError, String(streamError));

  t.is((await engine.docker.info()).Name, server.id, 'the next call works');
  t.is(engine.connections, 2);
  t.is((await container.inspect()).State.Running, true, 'the container itself kept running');
  await container.remove({ force: true });
  t.is((await sshConnectionsOnServer()).length, 1, 'still one connection at a time');
  t.true(log.some((line) => line.startsWith(`lost the SSH connection to server ${server.id}`)), log.join('\n'));
});

test.serial('keep-alive notices a server that stopped answering; the call in flight fails, the next one connects again', async (t) => {
  const watched = await connectEngine(targetOf(server), { name: server.id, keepaliveMs: 300 });
  try {
    t.is((await watched.docker.info()).Name, server.id);
    await cli(['pause', server.docker.container]);
    let error: unknown;
    try {
      await watched.docker.info();
    } catch (e) {
      error = e;
    } finally {
      await cli(['unpause', server.docker.container]);
    }
    t.true(error instanceof RemoteEngineError, String(error));
    t.regex((error as Error).message, /no answer to 3 keep-alive checks/);
    t.is((await watched.docker.info()).Name, server.id);
    t.is(watched.connections, 2);
  } finally {
    await watched.close();
  }
  await t.throwsAsync(watched.docker.ping(), { instanceOf: RemoteEngineError, message: /was closed/ });
});
