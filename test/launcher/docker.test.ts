// The launcher's docker primitives against the real engine: builds (cached by tag, failures
// with docker's own message), containers with quarry's labels on the stack's network, and
// health waits that see a crash.
import test from 'ava';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildImage, CONTAINER_PIDS_LIMIT, ImageBuildError, listContainers, networkName, removeContainer, startContainer,
  UnhealthyError, waitHealthy,
} from '../../launcher/index.js';
import { docker } from '../support/docker.js';
import { httpGetWhenUp } from '../support/http.js';
import { repoRoot } from '../support/cli.js';

const stack = `lt${process.pid}`;

test.after.always(async () => {
  for (const c of await listContainers(docker, stack)) await removeContainer(docker, c.id, 0);
  await docker.getNetwork(networkName(stack)).remove().catch(() => undefined);
  await docker.getImage(`quarry/${stack}-store:test`).remove({ force: true }).catch(() => undefined);
});

test.serial('a build folder becomes an image once; the same tag again is cached', async (t) => {
  const lines: string[] = [];
  const folder = join(repoRoot, 'stacks-example/docsearch/store');
  const first = await buildImage(docker, { folder, tag: `quarry/${stack}-store:test`, onLine: (l) => lines.push(l) });
  t.is(first, 'built');
  t.true(lines.some((l) => /Step \d+\/\d+ : FROM quarry\/node:20/.test(l)), lines.join('\n'));
  t.is(await buildImage(docker, { folder, tag: `quarry/${stack}-store:test` }), 'cached');
});

test.serial('a container runs with quarry\'s labels and limits (memory of its slice, pids, rotated logs), is healthy, answers, and is found by its stack', async (t) => {
  const c = await startContainer(docker, {
    stack, name: 'store', kind: 'service', n: 1, image: `quarry/${stack}-store:test`, env: {}, port: 6379, memoryMb: 64,
    release: 'v1',
  });
  await waitHealthy(docker, c.id, { port: 6379, timeoutMs: 30_000 });
  t.is(c.name, `${stack}.store.1`);
  t.truthy(c.hostPort);
  // What `docker inspect` shows: one app cannot take more memory, processes or disk than this.
  const { HostConfig: host } = await docker.getContainer(c.id).inspect();
  t.is(host.Memory, 64 * 1024 * 1024);
  t.is(host.MemorySwap, 64 * 1024 * 1024, 'no swap beyond its slice');
  t.is(host.PidsLimit, CONTAINER_PIDS_LIMIT);
  t.is(CONTAINER_PIDS_LIMIT, 1024);
  t.deepEqual(host.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
  const url = `http://127.0.0.1:${c.hostPort}/searches`;
  t.is((await httpGetWhenUp(url)).body, '0');
  const listed = await listContainers(docker, stack);
  t.deepEqual(listed.map((x) => [x.name, x.unit, x.kind, x.n, x.release, x.state]), [[`${stack}.store.1`, 'store', 'service', 1, 'v1', 'running']]);
  await removeContainer(docker, c.id, 1);
  t.deepEqual(await listContainers(docker, stack), []);
});

test.serial('a container that exits is not healthy, and the error shows what it printed', async (t) => {
  const c = await startContainer(docker, {
    stack, name: 'crash', kind: 'worker', n: 1, image: 'quarry/node:20', env: { WHY: 'no config' },
    command: ['node', '-e', 'console.error("cannot start: " + process.env.WHY); process.exit(3)'], memoryMb: 64,
  });
  const err = await t.throwsAsync(waitHealthy(docker, c.id, { timeoutMs: 30_000 }), { instanceOf: UnhealthyError });
  t.regex(err!.message, new RegExp(`${stack}\\.crash\\.1 did not become healthy: it exited`));
  t.regex(err!.message, /cannot start: no config/);
  await removeContainer(docker, c.id, 0);
});

test.serial('a web container is healthy only once its health path answers 2xx', async (t) => {
  const c = await startContainer(docker, {
    stack, name: 'web', kind: 'web', n: 1, image: 'quarry/node:20', env: {}, port: 8080, memoryMb: 64,
    // Answers 503 on /healthz for its first second, then 200.
    command: ['node', '-e', "const t0 = Date.now(); require('http').createServer((q, s) => { s.statusCode = q.url === '/healthz' && Date.now() - t0 < 1000 ? 503 : 200; s.end('ok'); }).listen(8080)"],
  });
  const before = Date.now();
  await waitHealthy(docker, c.id, { port: 8080, path: '/healthz', timeoutMs: 30_000 });
  t.true(Date.now() - before >= 0);
  const { status } = await httpGetWhenUp(`http://127.0.0.1:${c.hostPort}/healthz`);
  t.is(status, 200);
  await removeContainer(docker, c.id, 0);
});

test('a failing build is an ImageBuildError with docker\'s message and the end of the output', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'quarry-badbuild-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(join(folder, 'Dockerfile'), 'FROM quarry/node:20\nRUN echo about to fail && exit 3\n');
  const err = await t.throwsAsync(buildImage(docker, { folder, tag: `quarry/${stack}-bad:test` }), { instanceOf: ImageBuildError });
  t.regex(err!.message, /returned a non-zero code: 3/);
  t.regex(err!.message, /about to fail/);
});

test('a build folder with a link loop builds: links go into the context as links, never followed', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'quarry-linkbuild-'));
  t.teardown(async () => {
    rmSync(folder, { recursive: true, force: true });
    await docker.getImage(`quarry/${stack}-links:test`).remove({ force: true }).catch(() => undefined);
  });
  writeFileSync(join(folder, 'Dockerfile'), 'FROM quarry/node:20\nCOPY . /app/\nRUN test -L /app/loop && test -f /app/data.txt\n');
  writeFileSync(join(folder, 'data.txt'), 'x\n');
  symlinkSync('.', join(folder, 'loop'));
  t.is(await buildImage(docker, { folder, tag: `quarry/${stack}-links:test` }), 'built');
});
