import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import {
  ConfigError, ConfigInvalidError, ConfigSyntaxError, ConfigUnreadableError,
  integer, list, loadConfig, object, optional, port, string, url,
} from '../../config/index.js';
import { QuarryError } from '../../errors/index.js';
import { freePort } from '../support/ports.js';

const schema = {
  port: port({ default: 80 }),
  host: string({ default: '0.0.0.0', nonEmpty: true }),
  etcd: list(url({ protocols: ['http:', 'https:'] }), { default: ['http://127.0.0.1:2379'], nonEmpty: true }),
  admin: object({ port: port({ default: 9080 }), host: string({ default: '127.0.0.1' }) }),
  name: optional(string()),
};

async function file(t: { teardown(fn: () => Promise<void>): void }, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'quarry-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'router.json');
  await writeFile(path, text);
  return pathToFileURL(path).href;
}

test('no location gives every default', async (t) => {
  t.deepEqual(await loadConfig(schema, undefined), {
    port: 80, host: '0.0.0.0', etcd: ['http://127.0.0.1:2379'], admin: { port: 9080, host: '127.0.0.1' }, name: undefined,
  });
});

test('a file:// document overrides the defaults it names, nested keys too', async (t) => {
  const at = await file(t, JSON.stringify({ port: 8080, etcd: 'http://10.0.0.1:2379', admin: { port: 0 } }));
  t.deepEqual(await loadConfig(schema, at), {
    port: 8080, host: '0.0.0.0', etcd: ['http://10.0.0.1:2379'], admin: { port: 0, host: '127.0.0.1' }, name: undefined,
  });
});

test('a bare path is read as a file, relative to cwd', async (t) => {
  const at = await file(t, '{"host": "127.0.0.1"}');
  const path = new URL(at).pathname;
  const dir = path.slice(0, path.lastIndexOf('/'));
  t.is((await loadConfig(schema, 'router.json', { cwd: dir })).host, '127.0.0.1');
});

test('a missing file names the URL', async (t) => {
  const err = await t.throwsAsync(loadConfig(schema, 'file:///nonexistent/quarry/router.json'), { instanceOf: ConfigUnreadableError });
  t.is(err?.message, 'config file:///nonexistent/quarry/router.json: cannot be read: no such file');
  t.true(err instanceof ConfigError && err instanceof QuarryError);
  t.is((err as ConfigError).url, 'file:///nonexistent/quarry/router.json');
});

test('a document that is not JSON names the URL', async (t) => {
  const at = await file(t, '{"port": 80,}');
  const err = await t.throwsAsync(loadConfig(schema, at), { instanceOf: ConfigSyntaxError });
  t.true(err!.message.startsWith(`config ${at}: is not valid JSON`));
});

test('a wrong value names the URL and the key', async (t) => {
  const at = await file(t, JSON.stringify({ port: '80' }));
  const err = await t.throwsAsync(loadConfig(schema, at), { instanceOf: ConfigInvalidError });
  t.is(err?.message, `config ${at}: key "port": must be an integer from 0 to 65535, got "80"`);
  t.is((err as ConfigInvalidError).key, 'port');
});

test('a fault inside a nested object or list names the dotted key', async (t) => {
  const nested = await file(t, JSON.stringify({ admin: { port: 70000 } }));
  const e1 = await t.throwsAsync(loadConfig(schema, nested), { instanceOf: ConfigInvalidError });
  t.is((e1 as ConfigInvalidError).key, 'admin.port');
  const listed = await file(t, JSON.stringify({ etcd: ['http://a:2379', 'ftp://b'] }));
  const e2 = await t.throwsAsync(loadConfig(schema, listed), { instanceOf: ConfigInvalidError });
  t.is((e2 as ConfigInvalidError).key, 'etcd.1');
  t.regex(e2!.message, /must be a URL \(http or https\), got "ftp:\/\/b"/);
});

test('an unknown key is a fault, so a misspelt setting never passes for its default', async (t) => {
  const at = await file(t, JSON.stringify({ prot: 8080 }));
  const err = await t.throwsAsync(loadConfig(schema, at), { instanceOf: ConfigInvalidError });
  t.is((err as ConfigInvalidError).key, 'prot');
  t.regex(err!.message, /is not a known setting/);
});

test('a required key that is absent is named', async (t) => {
  const at = await file(t, '{}');
  const err = await t.throwsAsync(loadConfig({ token: string(), retries: integer({ default: 3 }) }, at), { instanceOf: ConfigInvalidError });
  t.is(err?.message, `config ${at}: key "token": is required: a string`);
});

test('a document that is not an object is refused', async (t) => {
  const at = await file(t, '[1, 2]');
  const err = await t.throwsAsync(loadConfig(schema, at), { instanceOf: ConfigInvalidError });
  t.is(err?.message, `config ${at}: must be an object, got [1,2]`);
});

test('http:// documents are fetched; an error status names the URL', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/router.json') res.end(JSON.stringify({ port: 81 }));
    else { res.statusCode = 404; res.end(); }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.is((await loadConfig(schema, `${base}/router.json`)).port, 81);
  const err = await t.throwsAsync(loadConfig(schema, `${base}/missing.json`), { instanceOf: ConfigUnreadableError });
  t.is(err?.message, `config ${base}/missing.json: cannot be read: HTTP 404 Not Found`);
});

test('an http:// URL where nothing listens names the URL', async (t) => {
  const at = `http://127.0.0.1:${await freePort()}/router.json`;
  const err = await t.throwsAsync(loadConfig(schema, at), { instanceOf: ConfigUnreadableError });
  t.is(err?.message, `config ${at}: cannot be read: ECONNREFUSED`);
});

test('an unsupported scheme is refused', async (t) => {
  const err = await t.throwsAsync(loadConfig(schema, 'ftp://host/router.json'), { instanceOf: ConfigUnreadableError });
  t.regex(err!.message, /^config ftp:\/\/host\/router\.json: cannot be read: unsupported scheme ftp:/);
});
