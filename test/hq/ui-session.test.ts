// The dashboard's session and its cross-site rules, at the HTTP level, over MemoryControl (an
// HqControl held in memory: every title says "memory control"): the login trades the token
// for an HttpOnly, SameSite=Strict cookie; with the cookie, reads need nothing more and
// changes need `X-Quarry-UI: 1` and HQ's own Origin; the bearer token keeps working as it
// was. Also the dashboard's files and the top events route. The browser's view of the same
// is test/ui/dashboard.test.ts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import { startApi, type Api } from '../../hq/api/server.js';
import { Sessions } from '../../hq/api/session.js';
import type { OperationLine, TopBody } from '../../hq/api/wire.js';
import { MemoryControl } from './api-memory-control.js';

const TOKEN = 'ui-test-token-0123456789abcdef';

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function call(api: Api, method: string, path: string, headers: Record<string, string> = {}, body?: object): Promise<Answer> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const all = { ...headers, ...(text !== undefined && { 'content-type': 'application/json' }) };
  return new Promise((resolve, reject) => {
    const req = request(`${api.url}${path}`, { method, headers: all, agent: false }, (res) => {
      let got = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { got += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: got }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

async function started(t: { teardown(fn: () => Promise<void> | void): void }, sessions?: Sessions) {
  const control = new MemoryControl();
  const logged: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'quarry-ui-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A stand-in for the built files: the rules under test are the server's.
  const uiDir = join(dir, 'ui');
  mkdirSync(uiDir);
  writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>quarry HQ</title>');
  writeFileSync(join(uiDir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  const api = await startApi({
    control, home: new HomeLayout(join(dir, 'home')), token: TOKEN, host: '127.0.0.1', port: 0, log: (l) => logged.push(l), uiDir, topEveryMs: 50,
    ...(sessions && { sessions }),
  });
  t.teardown(() => api.close());
  const page = { origin: api.url, 'x-quarry-ui': '1' };
  return { api, control, logged, page };
}

/** Logs in as the page does: the session cookie's `name=value`. */
async function logIn(api: Api, page: Record<string, string>): Promise<string> {
  const res = await call(api, 'POST', '/ui/session', page, { token: TOKEN });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${res.body}`);
  return String(res.headers['set-cookie']![0]).split(';')[0]!;
}

test('memory control: the page and its session check answer without a login (200, loggedIn false), with a CSP that keeps the page to HQ', async (t) => {
  const { api } = await started(t);
  const check = await call(api, 'GET', '/ui/session');
  t.is(check.status, 200);
  t.deepEqual(JSON.parse(check.body), { loggedIn: false });
  const page = await call(api, 'GET', '/ui/');
  t.is(page.status, 200);
  t.regex(page.body, /quarry HQ/);
  t.regex(String(page.headers['content-security-policy']), /default-src 'self'.*connect-src 'self'.*frame-ancestors 'none'/);
  t.is(page.headers['x-frame-options'], 'DENY');
  const root = await call(api, 'GET', '/');
  t.is(root.status, 302);
  t.is(root.headers.location, '/ui/');
  const icon = await call(api, 'GET', '/favicon.ico');
  t.is(icon.status, 301);
  t.is((await call(api, 'GET', '/ui/favicon.svg')).status, 200);
});

test('memory control: a login with the token sets an HttpOnly, SameSite=Strict session cookie (a random id, not the token); a wrong token is refused and says so', async (t) => {
  const { api, logged, page } = await started(t);
  const wrong = await call(api, 'POST', '/ui/session', page, { token: `${TOKEN}x` });
  t.is(wrong.status, 401);
  t.is(JSON.parse(wrong.body).error.message, 'HQ refused the token: it is not this HQ\'s API token');
  t.is(wrong.headers['set-cookie'], undefined);

  const ok = await call(api, 'POST', '/ui/session', page, { token: TOKEN });
  t.is(ok.status, 200);
  const cookie = String(ok.headers['set-cookie']![0]);
  t.regex(cookie, /^quarry_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/);
  t.false(cookie.includes(TOKEN));
  const pair = cookie.split(';')[0]!;
  t.deepEqual(JSON.parse((await call(api, 'GET', '/ui/session', { cookie: pair })).body), { loggedIn: true });
  // Another login is another session.
  t.not(await logIn(api, page), pair);
  t.false(logged.some((l) => l.includes(TOKEN)), 'the token is never logged');
});

test('memory control: a login must come from the page too (header and own Origin): no login CSRF', async (t) => {
  const { api } = await started(t);
  const noHeader = await call(api, 'POST', '/ui/session', { origin: api.url }, { token: TOKEN });
  t.is(noHeader.status, 403);
  t.regex(JSON.parse(noHeader.body).error.message, /X-Quarry-UI: 1/);
  const otherSite = await call(api, 'POST', '/ui/session', { origin: 'http://evil.example', 'x-quarry-ui': '1' }, { token: TOKEN });
  t.is(otherSite.status, 403);
  t.regex(JSON.parse(otherSite.body).error.message, /"http:\/\/evil\.example"/);
  t.is(otherSite.headers['set-cookie'], undefined);
});

test('memory control: with the cookie, reads need nothing more; a change without X-Quarry-UI, from another origin or with no Origin is refused (403) and never reaches HQ', async (t) => {
  const { api, control, page } = await started(t);
  const cookie = await logIn(api, page);
  const stacks = await call(api, 'GET', '/v1/stacks', { cookie });
  t.is(stacks.status, 200);
  t.deepEqual(JSON.parse(stacks.body), { stacks: ['demo', 'empty'] });

  const scale = { changes: { web: 3 } };
  const bare = await call(api, 'POST', '/v1/stacks/demo/scale', { cookie }, scale);
  t.is(bare.status, 403);
  t.is(JSON.parse(bare.body).error.name, 'ApiForbiddenError');
  t.is((await call(api, 'POST', '/v1/stacks/demo/scale', { cookie, 'x-quarry-ui': '1', origin: 'http://evil.example' }, scale)).status, 403);
  t.is((await call(api, 'POST', '/v1/stacks/demo/scale', { cookie, 'x-quarry-ui': '1' }, scale)).status, 403);
  t.is((await call(api, 'POST', '/v1/stacks/demo/rollback', { cookie, origin: api.url }, { version: 1 })).status, 403);
  t.false(control.calls.some((c) => c.startsWith('scale') || c.startsWith('rollback')), JSON.stringify(control.calls));

  const done = await call(api, 'POST', '/v1/stacks/demo/scale', { cookie, ...page }, scale);
  t.is(done.status, 200);
  const last = done.body.trim().split('\n').map((l) => JSON.parse(l) as OperationLine).at(-1)!;
  t.true('result' in last && last.result.scale.web === 3, done.body);
});

test('memory control: the command line\'s bearer token works as before, with no header and no Origin; an unknown or ended session is a 401 that says to log in again', async (t) => {
  const { api, page } = await started(t);
  const bearer = await call(api, 'POST', '/v1/stacks/demo/scale', { authorization: `Bearer ${TOKEN}` }, { changes: { web: 2 } });
  t.is(bearer.status, 200);
  const none = await call(api, 'GET', '/v1/stacks');
  t.is(none.status, 401);
  t.is(JSON.parse(none.body).error.message, 'this HQ wants its API token (Authorization: Bearer TOKEN)');
  const forged = await call(api, 'GET', '/v1/stacks', { cookie: 'quarry_session=made-up' });
  t.is(forged.status, 401);
  t.regex(JSON.parse(forged.body).error.message, /session ended.*log in again/);

  const cookie = await logIn(api, page);
  const out = await call(api, 'DELETE', '/ui/session', { cookie, ...page });
  t.is(out.status, 200);
  t.regex(String(out.headers['set-cookie']![0]), /^quarry_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict$/);
  t.is((await call(api, 'GET', '/v1/stacks', { cookie })).status, 401);
  // A logout must come from the page as well.
  const other = await logIn(api, page);
  t.is((await call(api, 'DELETE', '/ui/session', { cookie: other })).status, 403);
  t.is((await call(api, 'GET', '/v1/stacks', { cookie: other })).status, 200);
});

test('memory control: a session ends at its expiry', async (t) => {
  let now = 1_000_000;
  const { api, page } = await started(t, new Sessions(60_000, () => now));
  const cookie = await logIn(api, page);
  now += 59_000;
  t.is((await call(api, 'GET', '/v1/stacks', { cookie })).status, 200);
  now += 1_000;
  t.is((await call(api, 'GET', '/v1/stacks', { cookie })).status, 401);
  t.deepEqual(JSON.parse((await call(api, 'GET', '/ui/session', { cookie })).body), { loggedIn: false });
});

/** The first `n` events of an event stream, then the connection is dropped. */
function events(api: Api, path: string, headers: Record<string, string>, n: number): Promise<{ status: number; type: string; events: Array<{ event: string; data: string }> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${api.url}${path}`, { headers, agent: false }, (res) => {
      const got: Array<{ event: string; data: string }> = [];
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const field = (name: string) => [...block.matchAll(/^(\w+): (.*)$/gm)].find((m) => m[1] === name)?.[2] ?? '';
          got.push({ event: field('event'), data: field('data') });
          if (got.length === n) {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), events: got });
          }
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), events: got }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('memory control: GET /v1/stacks/:stack/top/events sends the top view as server-sent events, again and again; an unknown stack is a 404 first', async (t) => {
  const { api, control, page } = await started(t);
  const cookie = await logIn(api, page);
  const got = await events(api, '/v1/stacks/demo/top/events', { cookie }, 3);
  t.is(got.status, 200);
  t.regex(got.type, /^text\/event-stream/);
  t.deepEqual(got.events.map((e) => e.event), ['top', 'top', 'top']);
  const body = JSON.parse(got.events[0]!.data) as TopBody;
  t.is(body.top.stack, 'demo');
  t.is(body.top.connections[0]!.level, 'high');
  t.true(control.calls.filter((c) => c === 'top demo').length >= 3);

  const ghost = await call(api, 'GET', '/v1/stacks/ghost/top/events', { authorization: `Bearer ${TOKEN}` });
  t.is(ghost.status, 404);
  t.regex(JSON.parse(ghost.body).error.message, /no stack 'ghost'/);
  t.is((await call(api, 'GET', '/v1/stacks/demo/top/events')).status, 401);
});

test('memory control: with no built files, /ui/ says how to build them (503); the session check still answers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-ui-none-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const api = await startApi({
    control: new MemoryControl(), home: new HomeLayout(join(dir, 'home')), token: TOKEN, host: '127.0.0.1', port: 0, log: () => undefined, uiDir: join(dir, 'nothing'),
  });
  t.teardown(() => api.close());
  const page = await call(api, 'GET', '/ui/');
  t.is(page.status, 503);
  t.regex(page.body, /not built: run 'npm run build'/);
  t.is((await call(api, 'GET', '/ui/session')).status, 200);
});
