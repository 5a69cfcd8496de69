import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import { startApi, type Api } from '../../hq/api/server.js';
import { CertificateStore, MemoryCertificateKv } from '../../hq/certs/index.js';
import { runCli } from '../../cli/index.js';
import { makeTestCa } from '../router/test-ca.js';
import { MemoryControl } from './api-memory-control.js';

// `/v1/certs` and `quarry certs` over the real CertificateStore on a memory KV (in HQ it is
// etcd, `/quarry/certs/<domain>`, which test/router/https.test.ts shows the router serving).

const TOKEN = 'test-token-certs-0123456789';
const ca = makeTestCa();
test.after.always(() => ca.remove());

async function setup(t: { teardown(fn: () => Promise<void> | void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-certs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kv = new MemoryCertificateKv();
  const logged: string[] = [];
  const api: Api = await startApi({
    control: new MemoryControl(), home: new HomeLayout(join(dir, 'home')), token: TOKEN, host: '127.0.0.1', port: 0,
    log: (l) => logged.push(l), certs: new CertificateStore(kv),
  });
  t.teardown(() => api.close());
  const env = { ...process.env, QUARRY_HQ: api.url, QUARRY_TOKEN: TOKEN, QUARRY_HOME: join(dir, 'client') };
  const cli = async (...argv: string[]) => {
    const [out, err] = [new PassThrough(), new PassThrough()];
    let [stdout, stderr] = ['', ''];
    out.on('data', (c: Buffer) => { stdout += c.toString(); });
    err.on('data', (c: Buffer) => { stderr += c.toString(); });
    const code = await runCli(argv, { stdout: out, stderr: err, cwd: dir, env });
    return { code, stdout, stderr };
  };
  return { api, kv, logged, dir, cli };
}

function call(api: Api, method: string, path: string, body?: object): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (body) headers['content-type'] = 'application/json';
    const req = request(`${api.url}${path}`, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

test('quarry certs add, list and remove: kept in the store for the routers, the key never shown nor logged', async (t) => {
  const { kv, logged, dir, cli } = await setup(t);
  const pair = ca.issue(['shop.test']);
  writeFileSync(join(dir, 'shop.pem'), pair.cert);
  writeFileSync(join(dir, 'shop.key'), pair.key, { mode: 0o600 });

  const added = await cli('certs', 'add', 'Shop.Test', '--cert', 'shop.pem', '--key', 'shop.key');
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /certificate for shop\.test kept \(issuer quarry test CA, expires \d{4}-\d\d-\d\d/);
  const stored = JSON.parse(kv.values.get('/quarry/certs/shop.test')!) as { cert: string; key: string; source: string };
  t.is(stored.key, pair.key);
  t.is(stored.source, 'manual');

  const list = await cli('certs', 'list');
  t.regex(list.stdout, /^DOMAIN\s+ISSUER\s+EXPIRES\s+SOURCE\nshop\.test\s+quarry test CA\s+\d{4}-\d\d-\d\d \(\d+ d\)\s+manual\n$/);
  const json = JSON.parse((await cli('certs', 'list', '--json')).stdout) as Array<Record<string, unknown>>;
  t.deepEqual(json.map((c) => [c.domain, c.issuer, c.source, c.names]), [['shop.test', 'quarry test CA', 'manual', ['shop.test']]]);

  const keyBody = pair.key.split('\n')[1]!;
  for (const text of [added.stdout, added.stderr, list.stdout, JSON.stringify(json), logged.join('\n')]) t.false(text.includes(keyBody));
  t.true(logged.some((l) => /certificate for shop\.test added/.test(l)));

  const removed = await cli('certs', 'remove', 'shop.test');
  t.is(removed.code, 0);
  t.false(kv.values.has('/quarry/certs/shop.test'));
  const again = await cli('certs', 'remove', 'shop.test');
  t.not(again.code, 0);
  t.regex(again.stderr, /HQ keeps no certificate for shop\.test/);
});

test('a certificate that cannot serve the domain is refused with a 400 saying why, the key unechoed', async (t) => {
  const { api, kv } = await setup(t);
  const shop = ca.issue(['shop.test']);
  const other = ca.issue(['other.test']);
  const cases: Array<[string, object, RegExp]> = [
    ['shop.test', { cert: other.cert, key: other.key }, /the certificate is for other\.test, not shop\.test/],
    ['shop.test', { cert: shop.cert, key: other.key }, /the key for shop\.test does not belong to its certificate/],
    ['shop.test', { cert: shop.cert }, /give the certificate and its key/],
    ['shop.test', { cert: 'hello', key: '-----BEGIN nothing' }, /give the certificate and its key/],
    ['not a domain', { cert: shop.cert, key: shop.key }, /is not a domain name/],
  ];
  for (const [domain, body, message] of cases) {
    const answer = await call(api, 'PUT', `/v1/certs/${encodeURIComponent(domain)}`, body);
    t.is(answer.status, 400, answer.body);
    t.regex(answer.body, message);
    t.false(answer.body.includes(other.key.split('\n')[1]!));
  }
  t.is(kv.values.size, 0);
  // A wildcard certificate serves `*.` (and is kept under that name).
  const wild = ca.issue(['*.wild.test']);
  t.is((await call(api, 'PUT', `/v1/certs/${encodeURIComponent('*.wild.test')}`, wild)).status, 201);
  t.is((await call(api, 'PUT', `/v1/certs/${encodeURIComponent('*.wild.test')}`, wild)).status, 200);
  t.true(kv.values.has('/quarry/certs/*.wild.test'));
  t.is((await call(api, 'DELETE', '/v1/certs/none.test')).status, 404);
});
