import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import { AGENT_CONTAINER, installAgent, loadKey, serverKey, type LoadRecord, type ServerRecord } from '../../launcher/agent/index.js';
import { createProvider, type DockerServer } from '../../pacific/index.js';
import { repoRoot } from '../support/cli.js';
import { freePort } from '../support/ports.js';
import { DOCKER, docker, quarryKey, removeFleet, uniqueFleet } from '../pacific/fleet.js';

// One docker-provider server for the file: the agent image streamed into its own engine,
// installed there over SSH, reporting to an etcd on this machine that the grid reaches at its
// network's gateway.
const key = quarryKey();
const fleet = uniqueFleet('tagent');
const provider = createProvider({ provider: 'docker', fleet, privateKey: key.privateKey, bootTimeoutMs: 150_000 });
const scratch = mkdtempSync(join(tmpdir(), 'quarry-agent-image-'));
let etcdProcess: ChildProcess | undefined;
let etcd: Etcd3 | undefined;
let server: DockerServer;
let engine: Docker;
let gridEtcd: string;

test.after.always(async () => {
  etcd?.close();
  await provider.close();
  await removeFleet(fleet);
  if (etcdProcess && etcdProcess.exitCode === null) {
    const gone = new Promise((r) => etcdProcess!.once('exit', r));
    etcdProcess.kill('SIGTERM');
    await gone;
  }
  rmSync(scratch, { recursive: true, force: true });
});

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting (${timeoutMs} ms): ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** etcd on the fleet network's gateway (the host, as the servers see it) and on 127.0.0.1. */
async function startGridEtcd(gateway: string): Promise<{ grid: string; local: string }> {
  const port = await freePort();
  const peer = await freePort();
  const grid = `http://${gateway}:${port}`;
  const local = `http://127.0.0.1:${port}`;
  etcdProcess = spawn('etcd', [
    '--name', 'agent-test', '--data-dir', join(scratch, 'etcd'),
    '--listen-client-urls', `${grid},${local}`, '--advertise-client-urls', grid,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `agent-test=http://127.0.0.1:${peer}`,
  ], { stdio: ['ignore', 'ignore', 'ignore'] });
  const client = new Etcd3({ hosts: local });
  await until('etcd to answer', async () => ((await client.get('/quarry/ping').string(), true)), 20_000);
  client.close();
  return { grid, local };
}

/** `docker save IMAGE | docker exec -i SERVER docker load`: the image into the server's own engine. */
function streamImage(image: string, container: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const save = spawn(DOCKER, ['save', image], { stdio: ['ignore', 'pipe', 'pipe'] });
    const load = spawn(DOCKER, ['exec', '-i', container, 'docker', 'load'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let errors = '';
    save.stderr!.on('data', (c: Buffer) => { errors += c.toString(); });
    load.stderr!.on('data', (c: Buffer) => { errors += c.toString(); });
    save.stdout!.pipe(load.stdin!);
    load.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker load in ${container} exited ${code}: ${errors}`))));
  });
}

/** The server's engine over SSH (docker-modem runs `docker system dial-stdio` there), pinned to its host key. */
function serverEngine(s: DockerServer): Docker {
  const pinned = s.ssh.hostKey!.trim().split(/\s+/).slice(0, 2).join(' ');
  return new Docker({
    protocol: 'ssh', host: s.ssh.host, port: s.ssh.port, username: s.ssh.user,
    sshOptions: {
      privateKey: key.privateKey,
      hostVerifier: (blob: Buffer) => `${blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1')} ${blob.toString('base64')}` === pinned,
    },
  });
}

const onServer = (...args: string[]) => docker(['exec', server.docker.container, ...args]);

test.before(async () => {
  const started = Date.now();
  const made = await promisify(execFile)('bash', [join(repoRoot, 'scripts/agent-image.sh')], { cwd: repoRoot });
  console.log(`agent image ${made.stdout.trim()} ready in ${Date.now() - started} ms`);
  server = (await provider.add('s-1vcpu-1gb')) as DockerServer;
  const gateway = await docker(['network', 'inspect', server.docker.network, '-f', '{{(index .IPAM.Config 0).Gateway}}']);
  const endpoints = await startGridEtcd(gateway);
  gridEtcd = endpoints.grid;
  etcd = new Etcd3({ hosts: endpoints.local });
  const loading = Date.now();
  await streamImage('quarry/agent:latest', server.docker.container);
  console.log(`streamed quarry/agent:latest into ${server.id} in ${Date.now() - loading} ms`);
  engine = serverEngine(server);
});

test.serial('installAgent runs the agent on the server; its record appears in etcd from inside the grid', async (t) => {
  const started = Date.now();
  await installAgent(engine, { server: server.id, address: server.address, etcd: [gridEtcd] });
  const record = await until('the server record', async () => {
    const text = await etcd!.get(serverKey(server.id)).string();
    return text === null ? undefined : (JSON.parse(text) as ServerRecord);
  });
  t.log(`record in etcd ${Date.now() - started} ms after installAgent was called`);
  t.is(record.id, server.id);
  t.is(record.address, server.address);
  t.is(record.agent.pid, 1, 'node is the container\'s first process');
  const serverDocker = await onServer('docker', 'version', '-f', '{{.Server.Version}}');
  t.is(record.docker.version, serverDocker, 'the server\'s own engine, through the bound socket');
  const load = await until('the load', async () => {
    const text = await etcd!.get(loadKey(server.id)).string();
    return text === null ? undefined : (JSON.parse(text) as LoadRecord);
  });
  t.is(load.containers, 0);
  t.true(load.cpus >= 1 && load.memory.totalMb > 0);

  const info = await engine.getContainer(AGENT_CONTAINER).inspect();
  t.is(info.HostConfig.NetworkMode, 'host');
  t.is(info.HostConfig.RestartPolicy?.Name, 'always');
  t.deepEqual(info.HostConfig.Binds, ['/var/run/docker.sock:/var/run/docker.sock', '/var/lib/quarry:/var/lib/quarry', '/etc/hosts:/host/etc/hosts']);
  t.falsy(info.HostConfig.CapAdd, 'no capability beyond docker\'s defaults without locknet');
  t.is(info.Config.Labels['quarry.agent'], '1');
  t.deepEqual(info.Config.Cmd, ['agent', '--config', 'file:///etc/quarry/agent.json']);
  t.deepEqual(JSON.parse(await onServer('docker', 'exec', AGENT_CONTAINER, 'cat', '/etc/quarry/agent.json')),
    { server: server.id, address: server.address, etcd: [gridEtcd], filesRoot: '/var/lib/quarry/files', hostsFile: '/host/etc/hosts', stateDir: '/var/lib/quarry' });
  t.regex(await onServer('docker', 'logs', AGENT_CONTAINER), /registered \/quarry\/servers\//);
});

test.serial('installAgent again: the same agent is left running; other settings replace it', async (t) => {
  const before = await engine.getContainer(AGENT_CONTAINER).inspect();
  await installAgent(engine, { server: server.id, address: server.address, etcd: [gridEtcd] });
  const same = await engine.getContainer(AGENT_CONTAINER).inspect();
  t.is(same.Id, before.Id);
  t.is(same.State.StartedAt, before.State.StartedAt, 'not restarted');

  await installAgent(engine, { server: server.id, address: '198.51.100.9', etcd: [gridEtcd] });
  const replaced = await engine.getContainer(AGENT_CONTAINER).inspect();
  t.not(replaced.Id, before.Id);
  t.true(replaced.State.Running);
  await until('the record with the new address', async () => {
    const text = await etcd!.get(serverKey(server.id)).string();
    return text !== null && (JSON.parse(text) as ServerRecord).address === '198.51.100.9' ? true : undefined;
  });
  t.is((await engine.listContainers({ all: true, filters: { label: ['quarry.agent=1'] } })).length, 1);

  // A stopped agent with the same settings is started again, not replaced.
  await engine.getContainer(AGENT_CONTAINER).stop({ t: 10 });
  await installAgent(engine, { server: server.id, address: '198.51.100.9', etcd: [gridEtcd] });
  const restarted = await engine.getContainer(AGENT_CONTAINER).inspect();
  t.is(restarted.Id, replaced.Id);
  t.true(restarted.State.Running);

  await t.throwsAsync(installAgent(engine, { server: server.id, address: server.address, etcd: [gridEtcd], image: 'quarry/agent:none' }),
    { message: /the image quarry\/agent:none is not on its engine; stream it in first/ });
  await t.throwsAsync(installAgent(engine, { server: 'a/b', address: server.address, etcd: [gridEtcd] }), { message: /key "server"/ });
});

test.serial('docker stop of the agent (SIGTERM) removes the record at once', async (t) => {
  await until('the record', async () => ((await etcd!.get(serverKey(server.id)).string()) !== null ? true : undefined));
  await engine.getContainer(AGENT_CONTAINER).stop({ t: 10 });
  t.is(await etcd!.get(serverKey(server.id)).string(), null);
  t.is(await etcd!.get(loadKey(server.id)).string(), null);
  t.regex(await onServer('docker', 'logs', '--tail', '3', AGENT_CONTAINER), /stopped: lease revoked/);
});
