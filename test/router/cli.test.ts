import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { runCli } from '../../cli/index.js';
import { startEtcd } from '../support/etcd.js';
import { get, spawnRouterCli, startBackend, until } from './backends.js';

async function configFile(t: { teardown(fn: () => Promise<void>): void }, document: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'quarry-router-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'router.json');
  await writeFile(path, typeof document === 'string' ? document : JSON.stringify(document));
  return pathToFileURL(path).href;
}

async function cli(argv: string[]): Promise<{ code: number; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
  const code = await runCli(argv, { stdout, stderr, cwd: process.cwd(), env: process.env });
  return { code, stderr: err };
}

test('a config with a wrong key stops quarry router at once, naming the URL and the key', async (t) => {
  const at = await configFile(t, { port: 'eighty' });
  const { code, stderr } = await cli(['router', '--config', at]);
  t.is(code, 1);
  t.is(stderr, `config ${at}: key "port": must be an integer from 0 to 65535, got "eighty"\n`);
});

test('a trustedProxies entry that is not an address or CIDR block stops quarry router at once', async (t) => {
  const at = await configFile(t, { trustedProxies: ['10.0.0.0/8', '10.0.0.0/33'] });
  const { code, stderr } = await cli(['router', '--config', at]);
  t.is(code, 1);
  t.is(stderr, `config ${at}: key "trustedProxies.1": must be an IP address or CIDR block (like 10.0.0.0/8), got "10.0.0.0/33"\n`);
});

test('a config that cannot be read stops quarry router at once, naming the URL', async (t) => {
  const { code, stderr } = await cli(['router', '--config', 'file:///nonexistent/router.json']);
  t.is(code, 1);
  t.is(stderr, 'config file:///nonexistent/router.json: cannot be read: no such file\n');
});

test('an unknown flag is a usage error', async (t) => {
  const { code, stderr } = await cli(['router', '--conf', 'x']);
  t.is(code, 2);
  t.regex(stderr, /usage: quarry router \[--config URL\]/);
});

test('quarry router --config URL routes from etcd, answers /health, and stops on SIGTERM', async (t) => {
  const etcd = await startEtcd();
  const backend = await startBackend('cli');
  t.teardown(async () => {
    await backend.close();
    await etcd.stop();
  });
  const at = await configFile(t, { port: 0, host: '127.0.0.1', etcd: [etcd.endpoint], admin: { port: 0 }, workers: 1 });
  const router = await spawnRouterCli(t, at);
  const { child, exited, port, adminPort } = router;

  await etcd.client.put('/quarry/routes/cli.test/w1').value(backend.url);
  await until('the route arrives', async () => (await get(port, 'cli.test')).status === 200);
  t.is((await get(port, 'cli.test')).body, 'cli');
  const health = await get(adminPort, 'localhost', '/health');
  t.is(health.status, 200);
  t.true(JSON.parse(health.body).ok);

  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.regex(router.err, /SIGTERM: finishing requests in flight/);
});
