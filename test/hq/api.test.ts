import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import { startApi, type Api } from '../../hq/api/server.js';
import type { AddKeyBody } from '../../hq/api/wire.js';
import { type OperationLine } from '../../hq/index.js';
import { MemoryControl } from './api-memory-control.js';
import { makeKey, run } from './harness.js';

// The API (express, routes, errors, NDJSON) over MemoryControl, an HqControl held in memory:
// every title says "memory control". The same routes over the real control (hq/deploy/),
// after a real push, are in test/cli/real-hq.test.ts. POST /v1/keys is real either way: it
// writes the authorized_keys of the home the API is given.

const TOKEN = 'test-token-0123456789abcdef';

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function call(api: Api, method: string, path: string, options: { token?: string | null; body?: string | object } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(`${api.url}${path}`, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const json = (a: Answer) => JSON.parse(a.body) as Record<string, unknown>;
const lines = (a: Answer) => a.body.trim().split('\n').map((l) => JSON.parse(l) as OperationLine);

async function api(t: { teardown(fn: () => Promise<void> | void): void }): Promise<{ api: Api; control: MemoryControl; logged: string[]; home: HomeLayout }> {
  const control = new MemoryControl();
  const logged: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'quarry-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const home = new HomeLayout(join(dir, 'home'));
  const started = await startApi({ control, home, token: TOKEN, host: '127.0.0.1', port: 0, log: (l) => logged.push(l) });
  t.teardown(() => started.close());
  return { api: started, control, logged, home };
}

test('memory control: health is open; everything else wants the token', async (t) => {
  const { api: a, control } = await api(t);
  const health = await call(a, 'GET', '/v1/health', { token: null });
  t.is(health.status, 200);
  t.deepEqual(json(health), { ok: true, service: 'quarry-hq' });

  const none = await call(a, 'GET', '/v1/stacks', { token: null });
  t.is(none.status, 401);
  t.is(none.headers['www-authenticate'], 'Bearer realm="quarry"');
  t.deepEqual(json(none), { error: { name: 'ApiUnauthorizedError', message: 'this HQ wants its API token (Authorization: Bearer TOKEN)' } });

  const wrong = await call(a, 'GET', '/v1/stacks', { token: `${TOKEN}x` });
  t.is(wrong.status, 401);
  t.deepEqual(json(wrong), { error: { name: 'ApiUnauthorizedError', message: 'HQ refused the API token' } });
  t.false(wrong.body.includes(TOKEN));

  // A change without the token does not reach HQ, even with a body.
  const scale = await call(a, 'POST', '/v1/stacks/demo/scale', { token: 'nope', body: { changes: { web: 5 } } });
  t.is(scale.status, 401);
  t.deepEqual(control.calls, []);

  const ok = await call(a, 'GET', '/v1/stacks');
  t.is(ok.status, 200);
  t.deepEqual(json(ok), { stacks: ['demo', 'empty'] });
});

test('memory control: ps lists every stack or one; an unknown stack is a 404 that says how to push it', async (t) => {
  const { api: a } = await api(t);
  const all = json(await call(a, 'GET', '/v1/ps')).containers as { container: string }[];
  t.deepEqual(all.map((r) => r.container), ['demo.web.1', 'demo.web.2', 'demo.redis.1', 'empty.worker.1']);
  const one = json(await call(a, 'GET', '/v1/ps?stack=empty')).containers as { container: string }[];
  t.deepEqual(one.map((r) => r.container), ['empty.worker.1']);
  const missing = await call(a, 'GET', '/v1/ps?stack=nope');
  t.is(missing.status, 404);
  t.deepEqual(json(missing), { error: { name: 'StackNotFoundError', message: "no stack 'nope' on this HQ; push it first (git push ssh://quarry@HOST:PORT/nope main)" } });
  const bad = await call(a, 'GET', '/v1/stacks/Bad..Name/releases');
  t.is(bad.status, 400);
  t.is((json(bad).error as { name: string }).name, 'StackNameError');
});

test('memory control: scale streams its progress as NDJSON and ends with the release', async (t) => {
  const { api: a, control } = await api(t);
  const answer = await call(a, 'POST', '/v1/stacks/demo/scale', { body: { changes: { web: 3 } } });
  t.is(answer.status, 200);
  t.is(answer.headers['content-type'], 'application/x-ndjson; charset=utf-8');
  const got = lines(answer);
  t.deepEqual(got.slice(0, 2), [{ step: 'Scaling web from 2 to 3' }, { info: 'started demo.web.3' }]);
  const last = got.at(-1) as { result: { version: number; description: string; scale: Record<string, number> } };
  t.is(last.result.version, 3);
  t.is(last.result.description, 'scale web=3');
  t.deepEqual(last.result.scale, { web: 3, redis: 1 });
  t.deepEqual(control.calls, ['scale demo {"web":3}']);
});

test('memory control: a refusal before any progress is a plain 400 or 404; a failure midway ends the stream with "failed"', async (t) => {
  const { api: a, logged } = await api(t);
  const unknown = await call(a, 'POST', '/v1/stacks/demo/scale', { body: { changes: { nope: 1 } } });
  t.is(unknown.status, 400);
  t.deepEqual(json(unknown), { error: { name: 'BadRequestError', message: "stack 'demo' has no node or element 'nope'" } });

  const missing = await call(a, 'POST', '/v1/stacks/ghost/scale', { body: { changes: { web: 1 } } });
  t.is(missing.status, 404);

  const crash = await call(a, 'POST', '/v1/stacks/demo/scale', { body: { changes: { crash: 1 } } });
  t.is(crash.status, 200);
  t.deepEqual(lines(crash), [
    { step: 'Scaling crash' },
    { failed: { name: 'Error', message: "HQ failed: the engine fell over; HQ's log has the details" } },
  ]);
  t.false(crash.body.includes('at '), 'no stack trace reaches the caller');
  t.true(logged.some((l) => l.startsWith('API POST /v1/stacks/demo/scale: Error: the engine fell over\n    at ')));
});

test('memory control: bad bodies are 400s that say what is wanted', async (t) => {
  const { api: a, control } = await api(t);
  const notJson = await call(a, 'POST', '/v1/stacks/demo/scale', { body: '{"changes": ' });
  t.is(notJson.status, 400);
  t.regex((json(notJson).error as { message: string }).message, /^the request body is not valid JSON/);
  const noChanges = await call(a, 'POST', '/v1/stacks/demo/scale', { body: {} });
  t.deepEqual(json(noChanges), { error: { name: 'ApiRequestError', message: 'give the changes as {"changes": {"NAME": N, …}}' } });
  const negative = await call(a, 'POST', '/v1/stacks/demo/scale', { body: { changes: { web: -1 } } });
  t.is((json(negative).error as { message: string }).message, 'changes.web: the number of containers must be a whole number from 0, got -1');
  const version = await call(a, 'POST', '/v1/stacks/demo/rollback', { body: { version: 'v1' } });
  t.is(version.status, 400);
  t.is((json(version).error as { message: string }).message, 'give the release as {"version": N} with N from 1, got "v1"');
  const secret = await call(a, 'POST', '/v1/stacks/demo/env', { body: { set: { TOKEN: 12345678 } } });
  t.is(secret.status, 400);
  t.is((json(secret).error as { message: string }).message, 'set.TOKEN: the value must be a string');
  t.false(secret.body.includes('12345678'));
  const empty = await call(a, 'POST', '/v1/stacks/demo/env', { body: {} });
  t.is((json(empty).error as { message: string }).message, 'nothing to change: give "set" or "unset"');
  const tail = await call(a, 'GET', '/v1/stacks/demo/logs?tail=ten');
  t.is(tail.status, 400);
  const route = await call(a, 'GET', '/v1/nothing');
  t.is(route.status, 404);
  t.deepEqual(json(route), { error: { name: 'ApiRouteNotFoundError', message: "HQ's API has no GET /v1/nothing" } });
  t.deepEqual(control.calls, []);
});

test('memory control: releases, rollback (and a release that never was), env read and change', async (t) => {
  const { api: a } = await api(t);
  const releases = json(await call(a, 'GET', '/v1/stacks/demo/releases')).releases as { version: number }[];
  t.deepEqual(releases.map((r) => r.version), [2, 1]);

  const back = lines(await call(a, 'POST', '/v1/stacks/demo/rollback', { body: { version: 1 } }));
  t.deepEqual(back[0], { step: 'Rolling back demo to v1' });
  t.is((back.at(-1) as { result: { description: string } }).result.description, 'rollback to v1');
  const never = await call(a, 'POST', '/v1/stacks/demo/rollback', { body: { version: 9 } });
  t.is(never.status, 404);
  t.deepEqual(json(never), { error: { name: 'ReleaseNotFoundError', message: "stack 'demo' has no release v9; see quarry releases demo" } });

  const env = await call(a, 'GET', '/v1/stacks/demo/env');
  t.is(env.headers['cache-control'], 'no-store');
  t.deepEqual(json(env), { env: { DATABASE_URL: 'postgres://secret@db/demo', LOG_LEVEL: 'info' } });
  const change = lines(await call(a, 'POST', '/v1/stacks/demo/env', { body: { set: { FOO: 'bar' }, unset: ['LOG_LEVEL'] } }));
  t.is((change.at(-1) as { result: { description: string; envKeys: string[] } }).result.description, 'env set FOO, unset LOG_LEVEL');
  t.deepEqual(json(await call(a, 'GET', '/v1/stacks/demo/env')), { env: { DATABASE_URL: 'postgres://secret@db/demo', FOO: 'bar' } });
});

test('memory control: logs stream as NDJSON, filtered by name and tail', async (t) => {
  const { api: a, control } = await api(t);
  const all = await call(a, 'GET', '/v1/stacks/demo/logs');
  t.is(all.status, 200);
  t.deepEqual(lines(all).map((l) => (l as unknown as { text: string }).text), ['listening on 8080', 'ready to accept connections', 'GET / 200']);
  const web = await call(a, 'GET', '/v1/stacks/demo/logs?name=web&tail=1');
  t.deepEqual(lines(web).map((l) => (l as unknown as { text: string }).text), ['GET / 200']);
  t.deepEqual(control.calls, ['logs demo * follow=false tail=all', 'logs demo web follow=false tail=1']);
});

test('memory control: followed logs keep going until the caller goes away, which stops the follow', async (t) => {
  const { api: a, control } = await api(t);
  const seen = await new Promise<string>((resolve, reject) => {
    const req = request(`${a.url}/v1/stacks/demo/logs?follow=1`, { headers: { authorization: `Bearer ${TOKEN}` }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('following')) {
          req.destroy();
          resolve(text);
        }
      });
    });
    req.on('error', (err) => { if (!req.destroyed) reject(err); });
    req.end();
  });
  t.true(seen.includes('listening on 8080'));
  // What the wait is for: the follow in HQ ended, because its caller went away.
  t.deepEqual(await control.followStopped, { byCaller: true });
  t.is(control.openFollows, 0);
  t.deepEqual(control.calls, ['logs demo * follow=true tail=all']);
});

test('memory control: servers: the list as JSON; the token is wanted as on every route', async (t) => {
  const { api: a, control } = await api(t);
  const list = await call(a, 'GET', '/v1/servers');
  t.is(list.status, 200);
  t.deepEqual(json(list), { servers: await control.servers() });
  const rows = json(list).servers as { id: string; containers: number; size: string | null; agent: boolean }[];
  t.deepEqual(rows.map((r) => [r.id, r.size, r.agent]), [['q-1', 's-1vcpu-1gb', true], ['q-2', 's-1vcpu-1gb', true]]);
  t.is(rows.reduce((n, r) => n + r.containers, 0), 4);

  for (const [method, path] of [['GET', '/v1/servers'], ['POST', '/v1/servers'], ['DELETE', '/v1/servers/q-1'], ['GET', '/v1/grid'], ['GET', '/v1/grid/demo']] as const) {
    const refused = await call(a, method, path, { token: null, ...(method === 'POST' ? { body: {} } : {}) });
    t.is(refused.status, 401, `${method} ${path}`);
    t.is((json(refused).error as { name: string }).name, 'ApiUnauthorizedError');
  }
  t.deepEqual(control.calls, [], 'no change reached HQ without the token');
});

test('memory control: servers add streams its progress and ends with the new server; remove likewise', async (t) => {
  const { api: a, control } = await api(t);
  const added = await call(a, 'POST', '/v1/servers');
  t.is(added.status, 200, 'no body: a server of the grid\'s size');
  t.is(added.headers['content-type'], 'application/x-ndjson; charset=utf-8');
  t.deepEqual(lines(added), [
    { step: 'Creating server q-3 (s-1vcpu-1gb)' },
    { info: 'droplet q-3 is up at 10.0.0.3' },
    { info: 'waiting for its agent' },
    { step: 'Server q-3 joined the grid' },
    { result: { id: 'q-3', provider: 'digitalocean', address: '10.0.0.3', size: 's-1vcpu-1gb', state: 'active', agent: true, firewall: 'on', memory: 1024, used: 0, free: 1024, containers: 0, router: false } },
  ] as OperationLine<unknown>[]);
  t.deepEqual((json(await call(a, 'GET', '/v1/servers')).servers as { id: string }[]).map((s) => s.id), ['q-1', 'q-2', 'q-3']);

  const removed = lines(await call(a, 'DELETE', '/v1/servers/q-3'));
  t.deepEqual(removed.slice(0, 2), [{ step: 'Removing server q-3' }, { info: 'droplet q-3 destroyed' }]);
  t.like((removed.at(-1) as { result: object }).result, { id: 'q-3', state: 'removed' });
  t.deepEqual((json(await call(a, 'GET', '/v1/servers')).servers as { id: string }[]).map((s) => s.id), ['q-1', 'q-2']);

  const sized = lines(await call(a, 'POST', '/v1/servers', { body: { size: 's-2vcpu-2gb' } }));
  t.like((sized.at(-1) as { result: object }).result, { id: 'q-4', size: 's-2vcpu-2gb', memory: 2048 });
  t.deepEqual(control.calls, ['addServer -', 'removeServer q-3', 'addServer s-2vcpu-2gb']);
});

test('memory control: servers: refusals are 400s before any progress; a refusal midway ends the stream with "failed"', async (t) => {
  const { api: a, logged } = await api(t);
  const unknown = await call(a, 'DELETE', '/v1/servers/q-9');
  t.is(unknown.status, 400);
  t.deepEqual(json(unknown), { error: { name: 'BadRequestError', message: "no server 'q-9' in the grid; see quarry servers" } });
  const busy = await call(a, 'DELETE', '/v1/servers/q-1');
  t.is(busy.status, 400);
  t.deepEqual(json(busy), { error: { name: 'BadRequestError', message: "server 'q-1' still runs 3 container(s): only an empty server can be removed" } });
  const size = await call(a, 'POST', '/v1/servers', { body: { size: 's-99' } });
  t.is(size.status, 400);
  t.deepEqual(json(size), { error: { name: 'UnknownSizeError', message: "digitalocean has no size 's-99'; sizes: s-1vcpu-1gb, s-2vcpu-2gb" } });
  const badBody = await call(a, 'POST', '/v1/servers', { body: { size: 2 } });
  t.is(badBody.status, 400);
  t.deepEqual(json(badBody), { error: { name: 'ApiRequestError', message: 'size must be a size\'s name (e.g. "s-1vcpu-1gb"), got 2' } });

  // The grid's max (3) is slicegrid's to say: its message reaches the caller as it is.
  t.is((await call(a, 'POST', '/v1/servers', { body: {} })).status, 200);
  const full = await call(a, 'POST', '/v1/servers', { body: {} });
  t.is(full.status, 200);
  t.deepEqual(lines(full).slice(-2), [
    { info: 'destroying q-4' },
    { failed: { name: 'SliceGridLimitError', message: 'the grid has its max of 3 blocks: raise max or remove a block before adding "q-4"' } },
  ]);
  t.deepEqual(logged, [], 'refusals are not HQ faults');
});

test('memory control: grid: the drawing and the allocation; with a stack its slices marked; an unknown stack is a 404', async (t) => {
  const { api: a, control } = await api(t);
  const all = await call(a, 'GET', '/v1/grid');
  t.is(all.status, 200);
  const view = json(all).grid as { drawing: string; servers: { id: string; slices: { id: string }[] }[]; autosize: boolean; min: number; max: number | null };
  t.deepEqual(view, await control.grid());
  t.deepEqual(view.servers.map((s) => [s.id, s.slices.map((x) => x.id)]), [
    ['q-1', ['demo.redis.1', 'demo.web.1', 'empty.worker.1']],
    ['q-2', ['demo.web.2']],
  ]);
  t.like(view, { autosize: false, min: 1, max: 3 });
  t.true(view.drawing.includes('|####|'));
  t.false(view.drawing.includes('|====|'), 'without a stack, every slice is drawn alike');

  const demo = json(await call(a, 'GET', '/v1/grid/demo')).grid as typeof view;
  t.true(demo.drawing.includes('|====|'), "the other stack's slices are drawn apart");
  t.deepEqual(demo.servers.map((s) => s.slices.map((x) => x.id)), [['demo.redis.1', 'demo.web.1'], ['demo.web.2']]);
  t.false(demo.drawing.includes('empty.worker.1'));

  const ghost = await call(a, 'GET', '/v1/grid/ghost');
  t.is(ghost.status, 404);
  t.is((json(ghost).error as { name: string }).name, 'StackNotFoundError');
  const bad = await call(a, 'GET', '/v1/grid/Bad..Name');
  t.is(bad.status, 400);
  t.is((json(bad).error as { name: string }).name, 'StackNameError');
});

test('memory control: POST /v1/keys authorises a key in the API\'s home, once, with ssh-keygen\'s fingerprint', async (t) => {
  const { api: a, home, logged, control } = await api(t);
  const key = await makeKey(join(home.root, '..'), 'carol');
  const pub = readFileSync(`${key}.pub`, 'utf8');
  const expected = (await run('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(' ')[1]!;

  const first = await call(a, 'POST', '/v1/keys', { body: { key: pub, source: 'carol.pub' } });
  t.is(first.status, 201);
  t.deepEqual(json(first) as unknown as AddKeyBody, { fingerprint: expected, added: true, comment: 'carol@test' });
  t.is(readFileSync(home.authorizedKeys, 'utf8'), pub);
  t.true(logged.some((l) => l === `authorised key ${expected} to push (through the API, from "carol.pub")`));

  const again = await call(a, 'POST', '/v1/keys', { body: { key: pub } });
  t.is(again.status, 200);
  t.deepEqual(json(again) as unknown as AddKeyBody, { fingerprint: expected, added: false, comment: 'carol@test' });
  t.is(readFileSync(home.authorizedKeys, 'utf8'), pub, 'added once');
  t.deepEqual(control.calls, [], 'keys are HQ\'s home, not the control\'s');
});

test('memory control: POST /v1/keys refuses what is not one public key with PublicKeyError\'s message, a private key unechoed, and wants the token', async (t) => {
  const { api: a, home, logged } = await api(t);
  const notKey = await call(a, 'POST', '/v1/keys', { body: { key: 'hello, this is not a key\n', source: 'notes.txt' } });
  t.is(notKey.status, 400);
  const error = json(notKey).error as { name: string; message: string };
  t.is(error.name, 'PublicKeyError');
  t.regex(error.message, /^notes\.txt: not an OpenSSH public key \(.*\); make one with ssh-keygen -t ed25519 and give the \.pub file$/);

  const two = await call(a, 'POST', '/v1/keys', { body: { key: 'ssh-ed25519 AAAA a\nssh-ed25519 BBBB b\n' } });
  t.is(two.status, 400);
  t.is((json(two).error as { message: string }).message, "the key: expected one OpenSSH public key (a line like 'ssh-ed25519 AAAA… you@host'), found 2 lines");

  const secret = await makeKey(join(home.root, '..'), 'secret');
  const privateText = readFileSync(secret, 'utf8');
  const refused = await call(a, 'POST', '/v1/keys', { body: { key: privateText, source: 'id_ed25519' } });
  t.is(refused.status, 400);
  t.is((json(refused).error as { message: string }).message, 'id_ed25519: this is a private key; give its public half (the .pub file beside it). Keep the private key secret');
  t.false(refused.body.includes(privateText.split('\n')[1]!.slice(0, 20)), 'the private key is not echoed');

  const noKey = await call(a, 'POST', '/v1/keys', { body: { source: 'x.pub' } });
  t.is(noKey.status, 400);
  t.is((json(noKey).error as { name: string }).name, 'ApiRequestError');
  const badSource = await call(a, 'POST', '/v1/keys', { body: { key: 'ssh-ed25519 AAAA', source: 7 } });
  t.is(badSource.status, 400);
  t.is((json(badSource).error as { message: string }).message, '"source" must be a string: the name of the key\'s file, for messages');
  // The source is only a name in messages: control characters do not reach them.
  const newline = await call(a, 'POST', '/v1/keys', { body: { key: 'nope', source: 'a\nb.pub' } });
  t.regex((json(newline).error as { message: string }).message, /^a b\.pub: not an OpenSSH public key/);

  const pub = readFileSync(`${secret}.pub`, 'utf8');
  const noToken = await call(a, 'POST', '/v1/keys', { token: null, body: { key: pub } });
  t.is(noToken.status, 401);
  const wrongToken = await call(a, 'POST', '/v1/keys', { token: 'wrong', body: { key: pub } });
  t.is(wrongToken.status, 401);
  t.false(existsSync(home.authorizedKeys), 'nothing was authorised');
  t.deepEqual(logged, [], 'refusals are not HQ faults');
});
