import { request } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import test from 'ava';
import { startRouter, StaticRouteSource, type Router } from '../../router/index.js';
import { get, startBackend, until, type Backend } from './backends.js';

/**
 * The forwarding edge cases that need a router of their own (short timeouts) or a backend
 * that misbehaves on purpose: no etcd here, routes are set in memory.
 */

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function router(routes: Record<string, Record<string, string>>, upstreamTimeoutMs = 60_000): Promise<Router> {
  const r = await startRouter({ routeSource: new StaticRouteSource(routes), upstreamTimeoutMs });
  cleanups.push(() => r.close(100));
  return r;
}

async function backend(name: string): Promise<Backend> {
  const b = await startBackend(name);
  cleanups.push(() => b.close());
  return b;
}

/** A raw TCP backend; `onConnection` decides what each connection gets. */
async function tcpBackend(onConnection: (socket: Socket, index: number) => void): Promise<{ url: string; connections: number }> {
  const state = { url: '', connections: 0 };
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket, state.connections++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(() => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(resolve);
  }));
  return state;
}

test('504 when a backend takes the request and stays silent', async (t) => {
  const silent = await tcpBackend((socket) => socket.resume());
  const r = await router({ 'silent.test': { w1: silent.url } }, 300);
  const reply = await get(r.port, 'silent.test');
  t.is(reply.status, 504);
  t.regex(reply.body, /did not answer in time/);
  const posted = await get(r.port, 'silent.test', '/', undefined, 'POST', 'a body');
  t.is(posted.status, 504, 'a request with a body times out the same way');
  t.is(r.stats().domains['silent.test']?.errors, 2);
  t.is(r.stats().totals.inFlight, 0);
});

test('a chunked upload (no Content-Length) is streamed through whole', async (t) => {
  const b = await backend('chunks');
  const r = await router({ 'chunks.test': { w1: b.url } });
  const body = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: r.port, method: 'POST', path: '/', headers: { host: 'chunks.test' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.write('first,');
    // The rest only once the backend has the request: the router sent it on before the body
    // was whole, so it could not have known a length.
    until('the backend has the request', () => b.lastHeaders !== undefined).then(() => req.end('second'), reject);
  });
  t.is(body, 'chunks got first,second');
  t.is(b.lastHeaders?.['transfer-encoding'], 'chunked');
});

test('a client that goes away cancels its request upstream', async (t) => {
  const b = await backend('gone');
  const r = await router({ 'gone.test': { w1: b.url } });
  const req = request({ host: '127.0.0.1', port: r.port, path: '/hold', headers: { host: 'gone.test' }, agent: false });
  req.on('error', () => undefined);
  req.end();
  await until('held on the backend', () => b.held === 1);
  t.is(r.stats().totals.inFlight, 1);
  req.destroy();
  await until('nothing in flight', () => r.stats().totals.inFlight === 0);
  t.is(r.stats().domains['gone.test']?.requests, 1);
  b.release();
});

test('a kept-alive connection the backend closed under a GET is retried on a fresh one', async (t) => {
  // Answers the first request of each connection with keep-alive, then drops the connection
  // when a second request arrives on it, as a backend whose idle timeout just fired would.
  const flaky = await tcpBackend((socket) => {
    let requests = 0;
    let buffered = '';
    socket.on('data', (data: Buffer) => {
      buffered += data.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        if (++requests === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\nok');
        else socket.destroy();
      }
    });
  });
  const r = await router({ 'flaky.test': { w1: flaky.url } });
  for (let i = 0; i < 4; i++) {
    const reply = await get(r.port, 'flaky.test');
    t.is(reply.status, 200);
    t.is(reply.body, 'ok');
  }
  t.true(flaky.connections >= 4, 'each reused connection was dropped and a fresh one used');
  t.is(r.stats().domains['flaky.test']?.errors, 0);
});

test('a HEAD answer carries no body, and the backend answers the next request', async (t) => {
  const b = await backend('head');
  const r = await router({ 'head.test': { w1: b.url } });
  const head = await get(r.port, 'head.test', '/', undefined, 'HEAD');
  t.is(head.status, 200);
  t.is(head.body, '');
  t.is(head.headers['x-backend'], 'head');
  t.is((await get(r.port, 'head.test')).body, 'head');
});
