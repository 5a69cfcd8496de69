import test from 'ava';
import WebSocket from 'ws';
import { startRouter, type Router } from '../../router/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { deadUrl, get, startBackend, until, type Backend } from './backends.js';

let etcd: TestEtcd;
let router: Router;
const backends: Backend[] = [];

async function backend(name: string): Promise<Backend> {
  const b = await startBackend(name);
  backends.push(b);
  return b;
}

const route = (domain: string, name: string, url: string) => etcd.client.put(`/quarry/routes/${domain}/${name}`).value(url);
const unroute = (domain: string, name: string) => etcd.client.delete().key(`/quarry/routes/${domain}/${name}`);
const routed = (domain: string) => until(`router routes ${domain}`, () => router.domains().includes(domain));

test.before(async () => {
  etcd = await startEtcd();
  // Routes present before the router starts come from its first read, later ones from the watch.
  const early = await backend('early');
  await route('early.test', 'w1', early.url);
  router = await startRouter({ etcd: [etcd.endpoint], admin: { port: 0 } });
});

test.after.always(async () => {
  await router?.close();
  await Promise.all(backends.map((b) => b.close()));
  await etcd?.stop();
});

test('routes read at start answer at once', async (t) => {
  const reply = await get(router.port, 'early.test');
  t.is(reply.status, 200);
  t.is(reply.body, 'early');
});

test('routes by Host, port stripped and case folded, each domain to its own backends', async (t) => {
  const [a, b] = [await backend('alpha'), await backend('beta')];
  await route('alpha.test', 'w1', a.url);
  await route('beta.test', 'w1', b.url);
  await routed('alpha.test');
  await routed('beta.test');
  t.is((await get(router.port, 'alpha.test')).body, 'alpha');
  t.is((await get(router.port, 'BETA.Test:8080')).body, 'beta');
  t.is((await get(router.port, 'Alpha.TEST.')).body, 'alpha');
});

test('balances over every backend of a domain', async (t) => {
  const pool = [await backend('rr1'), await backend('rr2'), await backend('rr3')];
  for (const [i, b] of pool.entries()) await route('rr.test', `w${i}`, b.url);
  await until('three backends routed', () => router.stats().backends.filter((s) => pool.some((b) => b.url === s.url)).length === 3);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await get(router.port, 'rr.test')).body);
  t.deepEqual([...seen].sort(), ['rr1', 'rr2', 'rr3']);
});

test('large and streamed bodies are relayed whole', async (t) => {
  const b = await backend('bodies');
  await route('bodies.test', 'w1', b.url);
  await routed('bodies.test');
  const big = await get(router.port, 'bodies.test', '/big');
  t.is(big.body.length, 1 << 20);
  t.is(big.headers['content-length'], String(1 << 20));
  const streamed = await get(router.port, 'bodies.test', '/stream');
  t.is(streamed.body, 'one,two,three');
  t.is(streamed.headers['transfer-encoding'], 'chunked');
  const upload = 'u'.repeat(300_000);
  t.is((await get(router.port, 'bodies.test', '/', undefined, 'PUT', upload)).body, `bodies got ${upload}`);
});

test('a *. route answers one label of subdomain, and an exact route wins over it', async (t) => {
  const [wild, exact] = [await backend('wild'), await backend('exact')];
  await route('*.apps.test', 'w1', wild.url);
  await route('special.apps.test', 'w1', exact.url);
  await routed('*.apps.test');
  await routed('special.apps.test');
  t.is((await get(router.port, 'shop.apps.test')).body, 'wild');
  t.is((await get(router.port, 'special.apps.test')).body, 'exact');
  t.is((await get(router.port, 'apps.test')).status, 404);
  t.is((await get(router.port, 'a.b.apps.test')).status, 404);
});

test('routes added and removed live', async (t) => {
  const [one, two] = [await backend('live1'), await backend('live2')];
  t.is((await get(router.port, 'live.test')).status, 404);
  await route('live.test', 'w1', one.url);
  await routed('live.test');
  t.is((await get(router.port, 'live.test')).body, 'live1');

  await route('live.test', 'w2', two.url);
  await unroute('live.test', 'w1');
  await until('only live2 left', () => !router.stats().backends.some((s) => s.url === one.url));
  const servedBefore = one.served;
  for (let i = 0; i < 4; i++) t.is((await get(router.port, 'live.test')).body, 'live2');
  t.is(one.served, servedBefore);

  await unroute('live.test', 'w2');
  await until('live.test unrouted', () => !router.domains().includes('live.test'));
  t.is((await get(router.port, 'live.test')).status, 404);
});

test('a backend that refuses connections is skipped and the request goes to another', async (t) => {
  const alive = await backend('alive');
  await route('dead.test', 'w1', await deadUrl());
  await route('dead.test', 'w2', alive.url);
  await until('both routed', () => router.stats().backends.filter((s) => s.url === alive.url).length === 1 &&
    router.domains().includes('dead.test'));
  for (let i = 0; i < 6; i++) {
    const reply = await get(router.port, 'dead.test');
    t.is(reply.status, 200);
    t.is(reply.body, 'alive');
  }
  const posted = await get(router.port, 'dead.test', '/', undefined, 'POST', 'some body');
  t.is(posted.body, 'alive got some body');
  t.true(router.stats().backends.some((s) => s.down), 'the dead backend is marked down');
  t.is(router.stats().domains['dead.test']?.errors, 0);
});

test('502 with a page when no backend of the domain answers', async (t) => {
  await route('gone.test', 'w1', await deadUrl());
  await route('gone.test', 'w2', await deadUrl());
  await routed('gone.test');
  const reply = await get(router.port, 'gone.test');
  t.is(reply.status, 502);
  t.regex(reply.body, /No backend of <code>gone\.test<\/code> answered/);
  t.is(router.stats().domains['gone.test']?.errors, 1);
});

test('404 with a clear page for an unknown domain', async (t) => {
  const reply = await get(router.port, 'nobody.test');
  t.is(reply.status, 404);
  t.regex(String(reply.headers['content-type']), /text\/html/);
  t.regex(reply.body, /No app on this quarry answers <code>nobody\.test<\/code>/);
  const escaped = await get(router.port, '<script>.test');
  t.false(escaped.body.includes('<script>.test'));
});

test('sets X-Forwarded-For, -Proto and -Host, replacing the client\'s, and passes Host through', async (t) => {
  const b = await backend('fwd');
  await route('fwd.test', 'w1', b.url);
  await routed('fwd.test');
  await new Promise<void>((resolve, reject) => {
    import('node:http').then(({ request }) => {
      const req = request({
        host: '127.0.0.1', port: router.port, path: '/',
        headers: { host: 'fwd.test:8080', 'x-forwarded-for': '203.0.113.7', connection: 'keep-alive, x-secret', 'x-secret': 'hop' },
      }, (res) => { res.resume(); res.on('end', resolve); });
      req.on('error', reject);
      req.end();
    }, reject);
  });
  const h = b.lastHeaders!;
  t.is(h['x-forwarded-for'], '127.0.0.1', 'a client that is not a trusted proxy cannot add addresses');
  t.is(h['x-forwarded-proto'], 'http');
  t.is(h['x-forwarded-host'], 'fwd.test:8080');
  t.is(h.host, 'fwd.test:8080');
  t.is(h['x-secret'], undefined, 'headers named in Connection are hop-by-hop');
});

test('a WebSocket passes through and echoes', async (t) => {
  const b = await backend('ws');
  await route('ws.test', 'w1', await deadUrl());
  await route('ws.test', 'w2', b.url);
  await routed('ws.test');
  const ws = new WebSocket(`ws://127.0.0.1:${router.port}/socket`, { headers: { host: 'ws.test' } });
  const replies: string[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => ws.send('hello'));
    ws.on('message', (data) => {
      replies.push(data.toString());
      if (replies.length === 1) ws.send('again');
      else resolve();
    });
  });
  ws.close();
  t.deepEqual(replies, ['ws: hello', 'ws: again']);
  t.is(router.stats().domains['ws.test']?.upgrades, 1);
  t.is(b.lastHeaders?.['x-forwarded-for'], '127.0.0.1');
});

test('a WebSocket to an unknown domain is refused with 404', async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${router.port}/`, { headers: { host: 'nows.test' } });
  const status = await new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(-1));
  });
  t.is(status, 404);
});

test('the health endpoint and counters per domain', async (t) => {
  const b = await backend('counted');
  await route('counted.test', 'w1', b.url);
  await routed('counted.test');
  for (let i = 0; i < 3; i++) await get(router.port, 'counted.test');
  const health = await get(router.adminPort!, 'localhost', '/health');
  t.is(health.status, 200);
  t.like(JSON.parse(health.body), { ok: true, routesLoaded: true, etcdConnected: true });
  const stats = JSON.parse((await get(router.adminPort!, 'localhost', '/stats')).body);
  t.is(stats.domains['counted.test'].requests, 3);
  t.is(stats.domains['counted.test'].responses['2xx'], 3);
  t.is(stats.domains['counted.test'].latency.count, 3);
  t.true(stats.domains['counted.test'].latency.p99Ms > 0);
  t.true(stats.totals.unknown >= 0);
});
