import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import test from 'ava';
import { startRouter, type Router } from '../../router/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { get, startBackend, until, type Backend } from './backends.js';
import { makeTestCa, type TestCa } from './test-ca.js';

/**
 * HTTPS with certificates from etcd, picked by SNI, from a test CA made with openssl:
 * a.test and b.test have certificates, plain.test has none (and is served on HTTP only).
 */
let etcd: TestEtcd;
let ca: TestCa;
let router: Router;
let backends: Backend[];

test.before(async () => {
  etcd = await startEtcd();
  ca = makeTestCa();
  backends = [await startBackend('a'), await startBackend('b'), await startBackend('plain')];
  for (const b of backends) await etcd.client.put(`/quarry/routes/${b.name}.test/w1`).value(b.url);
  for (const name of ['a.test', 'b.test']) {
    await etcd.client.put(`/quarry/certs/${name}`).value(JSON.stringify({ ...ca.issue([name]), source: 'manual' }));
  }
  router = await startRouter({ etcd: [etcd.endpoint], httpsPort: 0 });
  await until('certificates loaded', async () => (await handshake('b.test').catch(() => undefined)) !== undefined);
});

test.after.always(async () => {
  await router?.close(100);
  await Promise.all(backends.map((b) => b.close()));
  await etcd?.stop();
  ca?.remove();
});

/** The certificate the router shows for a server name (verified against the test CA). */
function handshake(servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: router.httpsPort!, servername, ca: ca.cert }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

function h1(host: string, path = '/'): Promise<{ status: number; body: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: router.httpsPort, path, servername: host, ca: ca.cert, headers: { host }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { body += chunk; });
        res.on('end', () => resolve({ status: res.statusCode!, body, alpn: (res.socket as { alpnProtocol?: string | false }).alpnProtocol ?? null }));
      });
    req.on('error', reject);
    req.end();
  });
}

function h2(host: string, path = '/', body?: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://127.0.0.1:${router.httpsPort}`, { ca: ca.cert, servername: host });
    session.on('error', reject);
    const stream = session.request({ ':path': path, ':method': body === undefined ? 'GET' : 'POST', ':authority': host },
      { endStream: body === undefined });
    let text = '';
    let headers: Record<string, unknown> = {};
    stream.setEncoding('utf8');
    stream.on('response', (h) => { headers = h; });
    stream.on('data', (chunk: string) => { text += chunk; });
    stream.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), body: text, headers });
    });
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

test('SNI picks each domain\'s own certificate', async (t) => {
  const a = await handshake('a.test');
  const b = await handshake('b.test');
  t.is(a.subject.CN, 'a.test');
  t.is(b.subject.CN, 'b.test');
  t.is(a.issuer.CN, 'quarry test CA');
});

test('HTTP/1.1 and HTTP/2 clients are both answered, with X-Forwarded-Proto https', async (t) => {
  const one = await h1('a.test');
  t.is(one.status, 200);
  t.is(one.body, 'a');
  t.is(backends[0]!.lastHeaders?.['x-forwarded-proto'], 'https');
  const two = await h2('b.test', '/x?y=1');
  t.is(two.status, 200);
  t.is(two.body, 'b');
  t.is(backends[1]!.lastUrl, '/x?y=1');
  t.is(backends[1]!.lastHeaders?.host, 'b.test');
  t.is(backends[1]!.lastHeaders?.['x-forwarded-proto'], 'https');
  const posted = await h2('b.test', '/', 'hello over h2');
  t.is(posted.body, 'b got hello over h2');
});

test('plain HTTP is redirected with 308 to HTTPS for a domain with a certificate, path and query kept', async (t) => {
  const reply = await get(router.port, `a.test:${router.port}`, '/cart?id=3');
  t.is(reply.status, 308);
  t.is(reply.headers.location, `https://a.test:${router.httpsPort}/cart?id=3`);
  // A domain without a certificate is served on plain HTTP as before.
  const plain = await get(router.port, 'plain.test', '/');
  t.is(plain.status, 200);
  t.is(plain.body, 'plain');
});

test('the ACME challenge path answers from etcd on plain HTTP, not redirected', async (t) => {
  await etcd.client.put('/quarry/acme/challenges/a.test/tok-EN_1').value('tok-EN_1.thumbprint');
  await until('challenge loaded', async () => (await get(router.port, 'a.test', '/.well-known/acme-challenge/tok-EN_1')).status === 200);
  t.is((await get(router.port, 'a.test', '/.well-known/acme-challenge/tok-EN_1')).body, 'tok-EN_1.thumbprint');
  // Tokens are case-sensitive; one HQ does not know goes to the app (not redirected); nor is another domain's answered.
  t.is((await get(router.port, 'a.test', '/.well-known/acme-challenge/TOK-EN_1')).body, 'a');
  t.is((await get(router.port, 'plain.test', '/.well-known/acme-challenge/tok-EN_1')).body, 'plain');
  await etcd.client.delete().key('/quarry/acme/challenges/a.test/tok-EN_1');
});

test('a domain without a certificate fails the TLS handshake rather than get another domain\'s certificate', async (t) => {
  const err = await t.throwsAsync(handshake('plain.test'));
  t.regex(err!.message, /alert|handshake|socket disconnected/i);
  // No server name at all: no certificate either.
  const noSni = await t.throwsAsync(new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: router.httpsPort!, rejectUnauthorized: false }, () => resolve(socket.getPeerCertificate()));
    socket.on('error', reject);
  }));
  t.truthy(noSni);
});

test('a certificate added, replaced or removed in etcd is in force without a restart', async (t) => {
  await etcd.client.put('/quarry/certs/late.test').value(JSON.stringify({ ...ca.issue(['late.test', 'www.late.test']), source: 'manual' }));
  await until('new certificate served', async () => (await handshake('late.test').catch(() => undefined))?.subject.CN === 'late.test');
  await etcd.client.delete().key('/quarry/certs/late.test');
  await until('removed certificate gone', async () => (await handshake('late.test').catch(() => undefined)) === undefined);
  t.pass();
});

test('a request for another domain on a connection made for one is answered 421', async (t) => {
  const reply = await new Promise<number>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: router.httpsPort, servername: 'a.test', ca: ca.cert, headers: { host: 'b.test' }, agent: false },
      (res) => { res.resume(); resolve(res.statusCode!); });
    req.on('error', reject);
    req.end();
  });
  t.is(reply, 421);
});
