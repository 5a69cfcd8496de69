import test from 'ava';
import {
  createProvider, ProviderHandlerError, UnknownServerError, UnknownSizeError,
  type DockerServer, type Progress, type Server, type ServerSize,
} from '../../pacific/index.js';
import { docker, onServer, quarryKey, removeFleet, uniqueFleet } from './fleet.js';

// Two servers for the whole file (the machine has 2 cores): every assertion shares them.
const key = quarryKey();
const fleet = uniqueFleet('tdock');
const provider = createProvider({ provider: 'docker', fleet, privateKey: key.privateKey, bootTimeoutMs: 150_000 });
const progress: Progress[] = [];
const dockerList = async () => (await provider.list()) as DockerServer[];
provider.on('progress', (p) => progress.push(p));
test.after.always(async () => {
  await provider.close();
  await removeFleet(fleet);
});

test.serial('add makes servers with their own address, host key, sshd and docker engine, at the size asked', async (t) => {
  const added: Server[] = [];
  provider.on('added', async (server) => { added.push(server); });
  const [a, b] = (await Promise.all([provider.add('s-1vcpu-512mb-10gb'), provider.add(700)])) as DockerServer[];
  if (!a || !b) return t.fail('two servers expected');
  t.truthy(a && b);
  t.deepEqual(added.map((s) => s.id).sort(), [a.id, b.id].sort());

  t.not(a.address, b.address);
  t.regex(a.address, /^\d+\.\d+\.\d+\.\d+$/);
  t.truthy(a.ssh.hostKey);
  t.not(a.ssh.hostKey, b.ssh.hostKey, 'each server made its own host keys');
  t.is(a.size.slug, 's-1vcpu-512mb-10gb');
  t.is(b.size.slug, 's-1vcpu-1gb', '700 MB asks for the smallest size with at least that memory');
  t.is(await docker(['inspect', '-f', '{{.HostConfig.Memory}}', a.docker.container]), String(512 * 1024 * 1024));

  // Over SSH with the quarry key, pinned to the reported host key: each answers from its own engine.
  const hostEngine = await docker(['info', '--format', '{{.ID}}']);
  const engines = await Promise.all([a, b].map((s) => onServer(s, key.privateKey, "docker info --format '{{.ID}} {{.Name}}'")));
  for (const [i, result] of engines.entries()) {
    t.is(result.code, 0, result.stderr);
    const [engine, name] = result.stdout.trim().split(' ');
    t.not(engine, hostEngine);
    t.is(name, [a, b][i]!.id);
  }
  t.true(progress.some((p) => p.server === a.id && /sshd answers/.test(p.message)), 'progress shows the wait');
  t.true(progress.some((p) => p.server === a.id && /docker .* answers/.test(p.message)));

  const listed = await provider.list();
  t.deepEqual(listed.map((s) => s.id).sort(), [a.id, b.id].sort());
  const record = listed.find((s) => s.id === a.id)!;
  t.like(record, { provider: 'docker', address: a.address, state: 'active', size: { slug: 's-1vcpu-512mb-10gb', memory: 512 } });
  t.deepEqual(JSON.parse(JSON.stringify(record)), record, 'the record is plain JSON (HQ stores it as settings.json)');
});

test.serial('resize changes the memory limit live and announces the old size', async (t) => {
  const [a] = await dockerList();
  if (!a) return t.fail('no server');
  const seen: Array<[string, ServerSize]> = [];
  provider.on('resized', (server, before) => { seen.push([server.size.slug ?? '', before]); });
  const after = await provider.resize(a.id, 's-2vcpu-2gb');
  t.like(after.size, { slug: 's-2vcpu-2gb', memory: 2048, cpus: 2 });
  t.is(await docker(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.CpuShares}}', a.docker.container]), `${2048 * 1024 * 1024} 2048`);
  t.deepEqual(seen, [['s-2vcpu-2gb', a.size]]);
  const still = await onServer(after, key.privateKey, 'docker info --format "{{.ServerVersion}}"');
  t.is(still.code, 0, 'the server kept running');
  await t.throwsAsync(provider.resize(a.id, 'huge'), { instanceOf: UnknownSizeError });
  await t.throwsAsync(provider.resize('nope', 's-1vcpu-1gb'), { instanceOf: UnknownServerError, message: /no server "nope"/ });
});

test.serial('remove takes the container and its volume away; a failing removed handler still leaves it gone', async (t) => {
  const [a, b] = await dockerList();
  if (!a || !b) return t.fail('two servers expected');
  const removed: string[] = [];
  provider.on('removed', (server) => { removed.push(server.id); });
  t.is((await provider.remove(a.id)).id, a.id);
  t.deepEqual(removed, [a.id]);
  t.deepEqual((await provider.list()).map((s) => s.id), [b.id]);
  t.is(await docker(['ps', '-aq', '--filter', `name=${a.docker.container}`]), '');
  t.is(await docker(['volume', 'ls', '-q', '--filter', `name=${a.docker.volume}`]), '');

  const failing = () => { throw new Error('HQ could not forget it'); };
  provider.on('removed', failing);
  const error = await t.throwsAsync(provider.remove(b.id), { instanceOf: ProviderHandlerError });
  t.regex(error?.message ?? '', /HQ could not forget it; the server is gone all the same/);
  provider.off('removed', failing);
  t.deepEqual(await provider.list(), []);
});

test.serial('an added handler that fails makes add fail and the server go again', async (t) => {
  const failing = () => { throw new Error('slicegrid said no'); };
  provider.on('added', failing);
  const error = await t.throwsAsync(provider.add('s-1vcpu-512mb-10gb'), { instanceOf: ProviderHandlerError });
  provider.off('added', failing);
  t.regex(error?.message ?? '', /the 'added' handler failed for server .*slicegrid said no; the server was removed again/);
  t.deepEqual(await provider.list(), []);
  t.is(await docker(['ps', '-aq', '--filter', `label=quarry.pacific.fleet=${fleet}`]), '');
});
