import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import test from 'ava';
import WebSocket from 'ws';
import { absoluteTarget, startRouter, StaticRouteSource, TrustedProxies, type Router, type RouterOptions } from '../../router/index.js';
import { get, startBackend, until, type Backend } from './backends.js';

/**
 * How the router treats what clients send: X-Forwarded-*, absolute-form targets, upgrades
 * (timeout, cap, h2c), a backend dying mid-answer, the access log. Each request is written as
 * raw bytes on a socket and the answer read as bytes, so nothing is tidied by an HTTP client.
 */

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function router(routes: Record<string, Record<string, string>>, options: Partial<RouterOptions> = {}): Promise<Router> {
  const r = await startRouter({ routeSource: new StaticRouteSource(routes), ...options });
  cleanups.push(() => r.close(100));
  return r;
}

async function backend(name: string): Promise<Backend> {
  const b = await startBackend(name);
  cleanups.push(() => b.close());
  return b;
}

/** A raw TCP backend; `onConnection` decides what each connection gets. */
async function tcpBackend(onConnection: (socket: Socket) => void): Promise<{ url: string; open: number }> {
  const state = { url: '', open: 0 };
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    state.open++;
    socket.on('close', () => { sockets.delete(socket); state.open--; });
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(() => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(resolve);
  }));
  return state;
}

/** Writes `bytes` to the router and reads everything until it closes the connection. */
function raw(port: number, bytes: string, deadlineMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the router did not close the connection within ${deadlineMs} ms; got so far: ${JSON.stringify(text)}`));
    }, deadlineMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { text += chunk; });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(bytes);
  });
}

const request = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

// ---- X-Forwarded-* -------------------------------------------------------------------------

test('a client\'s own X-Forwarded-For, -Proto and -Host are replaced by what the router saw', async (t) => {
  const b = await backend('xff');
  const r = await router({ 'xff.test': { w1: b.url } });
  const answer = await raw(r.port, request([
    'GET / HTTP/1.1', 'Host: xff.test', 'X-Forwarded-For: 203.0.113.7', 'X-Forwarded-For: 198.51.100.1',
    'X-Forwarded-Proto: https', 'X-Forwarded-Host: bank.example', 'Connection: close',
  ]));
  t.regex(answer, /^HTTP\/1\.1 200 /);
  t.is(b.lastHeaders!['x-forwarded-for'], '127.0.0.1');
  t.is(b.lastHeaders!['x-forwarded-proto'], 'http');
  t.is(b.lastHeaders!['x-forwarded-host'], 'xff.test');
});

test('a trusted proxy\'s X-Forwarded-For is appended to, and its -Proto and -Host kept', async (t) => {
  const b = await backend('trusted');
  const r = await router({ 'trusted.test': { w1: b.url } }, { trustedProxies: ['10.0.0.0/8', '127.0.0.0/30'] });
  await raw(r.port, request([
    'GET / HTTP/1.1', 'Host: trusted.test', 'X-Forwarded-For: 203.0.113.7', 'X-Forwarded-Proto: https',
    'X-Forwarded-Host: shop.example', 'Connection: close',
  ]));
  t.is(b.lastHeaders!['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  t.is(b.lastHeaders!['x-forwarded-proto'], 'https');
  t.is(b.lastHeaders!['x-forwarded-host'], 'shop.example');
});

test('trusted proxies match addresses and CIDR blocks, IPv4 (also IPv4-mapped) and IPv6', (t) => {
  const trusted = new TrustedProxies(['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
  for (const address of ['10.1.2.3', '::ffff:10.9.9.9', '192.0.2.7', 'fd12::1']) t.true(trusted.has(address), address);
  for (const address of ['11.0.0.1', '192.0.2.8', 'fe80::1', '127.0.0.1', undefined]) t.false(trusted.has(address), String(address));
  t.false(new TrustedProxies([]).has('127.0.0.1'));
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/', '']) t.throws(() => new TrustedProxies([bad]), undefined, bad);
});

// ---- absolute-form targets -----------------------------------------------------------------

test('an absolute-form target is routed by its host, which replaces Host, and sent on in origin form', async (t) => {
  const abs = await backend('abs');
  const other = await backend('other');
  const r = await router({ 'abs.test': { w1: abs.url }, 'other.test': { w1: other.url } });
  const answer = await raw(r.port, request(['GET http://ABS.test:8080/path/x?q=1 HTTP/1.1', 'Host: other.test', 'Connection: close']));
  t.regex(answer, /^HTTP\/1\.1 200 /);
  t.true(answer.endsWith('abs'));
  t.is(abs.lastUrl, '/path/x?q=1');
  t.is(abs.lastHeaders!.host, 'ABS.test:8080');
  t.is(abs.lastHeaders!['x-forwarded-host'], 'ABS.test:8080');
  t.is(other.served, 0);

  await raw(r.port, request(['GET http://abs.test HTTP/1.1', 'Host: other.test', 'Connection: close']));
  t.is(abs.lastUrl, '/', 'an empty path is /');

  const bad = await raw(r.port, request(['GET ftp://abs.test/file HTTP/1.1', 'Host: abs.test', 'Connection: close']));
  t.regex(bad, /^HTTP\/1\.1 400 /);
});

test('absolute-form targets parse as RFC 9112 says', (t) => {
  t.is(absoluteTarget('/a?b'), undefined);
  t.is(absoluteTarget('*'), undefined);
  t.deepEqual(absoluteTarget('http://a.example/p?q'), { host: 'a.example', path: '/p?q' });
  t.deepEqual(absoluteTarget('https://a.example:8443?q'), { host: 'a.example:8443', path: '/?q' });
  t.is(absoluteTarget('http:///p'), null);
  t.is(absoluteTarget('http://user@a.example/'), null);
  t.is(absoluteTarget('a.example:443'), null);
});

// ---- upgrades --------------------------------------------------------------------------------

const wsUpgrade = (host: string): string => request([
  'GET /socket HTTP/1.1', `Host: ${host}`, 'Connection: Upgrade', 'Upgrade: websocket',
  'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
]);

test('a backend that does not answer an upgrade in time: the client gets a 504 and both connections close', async (t) => {
  const mute = await tcpBackend((socket) => socket.resume());
  const r = await router({ 'mute.test': { w1: mute.url } }, { upgradeTimeoutMs: 200 });
  const answer = await raw(r.port, wsUpgrade('mute.test'));
  t.regex(answer, /^HTTP\/1\.1 504 /);
  await until('the backend connection closed', () => mute.open === 0, 5000);
  t.is(r.stats().domains['mute.test']?.upgrades, 0);
});

test('beyond maxTunnels an upgrade gets a 503; a closed tunnel frees its slot', async (t) => {
  const b = await backend('cap');
  const r = await router({ 'cap.test': { w1: b.url } }, { maxTunnels: 1 });
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/socket`, { headers: { host: 'cap.test' } });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  t.regex(await raw(r.port, wsUpgrade('cap.test')), /^HTTP\/1\.1 503 /);
  ws.close();
  // The slot is freed when the client's side of the tunnel has closed too: poll for it.
  await until('an upgrade goes through again', () => new Promise<boolean>((resolve) => {
    const again = new WebSocket(`ws://127.0.0.1:${r.port}/socket`, { headers: { host: 'cap.test' } });
    again.once('open', () => { again.close(); resolve(true); });
    again.once('error', () => resolve(false));
  }), 5000);
  t.pass();
});

test('Upgrade: h2c is refused with a 400 and never reaches the backend', async (t) => {
  const b = await backend('h2c');
  const r = await router({ 'h2c.test': { w1: b.url } });
  const answer = await raw(r.port, request([
    'GET / HTTP/1.1', 'Host: h2c.test', 'Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c',
    'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
  ]));
  t.regex(answer, /^HTTP\/1\.1 400 /);
  t.regex(answer, /h2c/);
  t.is(b.lastHeaders, undefined);
});

// ---- a backend that dies mid-answer ------------------------------------------------------------

test('a backend that dies mid-answer: the client\'s answer is cut off, logged once, and the router serves on', async (t) => {
  const chunked = await tcpBackend((socket) => socket.once('data', () => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => socket.destroy(), 50);
  }));
  const sized = await tcpBackend((socket) => socket.once('data', () => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello');
    setTimeout(() => socket.destroy(), 50);
  }));
  const fine = await backend('fine');
  const lines: string[] = [];
  const r = await router({ 'chunked.test': { w1: chunked.url }, 'sized.test': { w1: sized.url }, 'fine.test': { w1: fine.url } },
    { log: (line) => lines.push(line) });

  // Kept alive on purpose: the router must close the connection, not leave the client waiting.
  const cut = await raw(r.port, request(['GET /a HTTP/1.1', 'Host: chunked.test']));
  t.regex(cut, /^HTTP\/1\.1 200 OK\r\n/);
  t.true(cut.includes('hello'));
  t.false(cut.endsWith('0\r\n\r\n'), 'no final chunk: the client sees the answer incomplete');
  t.is(cut.match(/HTTP\/1\.1/g)!.length, 1, 'nothing else written after it');

  const short = await raw(r.port, request(['GET /b HTTP/1.1', 'Host: sized.test']));
  t.regex(short, /Content-Length: 100\r\n/i);
  t.true(short.endsWith('\r\n\r\nhello'), 'fewer bytes than the Content-Length, then the connection closes');

  t.is(lines.filter((line) => line.includes('chunked.test') && line.includes('broke off')).length, 1);
  t.is(lines.filter((line) => line.includes('sized.test') && line.includes('broke off')).length, 1);
  t.is((await get(r.port, 'fine.test')).body, 'fine');
  t.is(r.stats().totals.inFlight, 0);
});

// ---- the access log --------------------------------------------------------------------------

const CLF = /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "(.*)" (\d{3}) (\d+|-) (\S+) (\d+)\n$/;

test('the access log: one CLF line per request with the backend and milliseconds, no cookies, no secrets', async (t) => {
  const b = await backend('logged');
  const lines: string[] = [];
  const r = await router({ 'logged.test': { w1: b.url } }, { accessLog: (line) => lines.push(line) });
  await raw(r.port, request([
    'POST /login?next=%2F HTTP/1.1', 'Host: logged.test', 'Cookie: session=s3cret-cookie',
    'Authorization: Basic czNjcmV0LWF1dGg=', 'Content-Length: 16', 'Connection: close',
  ]) + 'password=hunter2');
  await raw(r.port, request(['GET / HTTP/1.1', 'Host: nobody.test', 'Connection: close']));
  await until('two lines logged', () => lines.length === 2, 5000);

  const [posted, unknown] = lines.map((line) => CLF.exec(line));
  t.truthy(posted, lines[0]);
  t.is(posted![1], 'POST /login?next=%2F HTTP/1.1');
  t.is(posted![2], '200');
  t.is(posted![3], String(Buffer.byteLength('logged got password=hunter2')));
  t.is(posted![4], `127.0.0.1:${b.port}`);
  t.truthy(unknown, lines[1]);
  t.is(unknown![2], '404');
  t.is(unknown![4], '-', 'the router answered itself');
  for (const secret of ['s3cret', 'czNjcmV0', 'hunter2', 'Cookie', 'Authorization']) t.false(lines.join('').includes(secret), secret);
});

test('the access log to a file: appended, one line per request, upgrades too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'quarry-access-log-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const b = await backend('filed');
  const r = await startRouter({ routeSource: new StaticRouteSource({ 'filed.test': { w1: b.url } }), accessLog: file });
  await get(r.port, 'filed.test', '/one');
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/socket`, { headers: { host: 'filed.test' } });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.close();
  await r.close(100);
  const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  t.is(lines.length, 2);
  t.regex(lines[0]!, /"GET \/one HTTP\/1\.1" 200 5 127\.0\.0\.1:\d+ \d+$/);
  t.regex(lines[1]!, /"GET \/socket HTTP\/1\.1" 101 - 127\.0\.0\.1:\d+ \d+$/);
});
