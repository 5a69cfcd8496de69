import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import ssh2 from 'ssh2';
import type { HqOptions } from '../../hq/index.js';
import { commitAll, gitEnv, push, refOf, startTestHq, uniqueStack, type TestHq } from './harness.js';

// The git endpoint's locks and timers (docs/hq.md, "Limits"), with real ssh2 and git against
// an HQ with small limits: a flood of connections that never log in, a receive-pack that is
// sent nothing, a pusher that reads nothing after the verdict, a deploy quieter than the idle
// limit, a push that waits too long for its stack's lock. Each test starts its own HQ. The
// pushes build nothing (an image node), so no docker build is waited for.

const hqs: TestHq[] = [];
const opened: Socket[] = [];
const clients: ssh2.Client[] = [];
test.after.always(async () => {
  for (const socket of opened) socket.destroy();
  for (const client of clients) client.end();
  for (const hq of hqs) await hq.close();
});

/** An HQ with these limits; its log lines, and `onLine` told each as it comes. */
async function hqWith(options: Partial<HqOptions>, onLine: (line: string) => void = () => undefined): Promise<TestHq & { lines: string[] }> {
  const lines: string[] = [];
  const t = await startTestHq({ ...options, log: (line) => { lines.push(line); onLine(line); } });
  hqs.push(t);
  return { ...t, lines };
}

/** A stack of one node on an image HQ's engine has: a push compiles it and builds nothing. */
async function imageRepo(t: TestHq): Promise<string> {
  const repo = join(t.dir, `work-${randomBytes(3).toString('hex')}`);
  mkdirSync(repo, { recursive: true });
  writeFileSync(join(repo, 'quarry.yml'),
    'version: 1\nnodes:\n  app:\n    type: service\n    image: quarry/node:20\n    port: 8080\n    command: [node, -e, "setInterval(() => {}, 1e6)"]\n');
  await commitAll(repo, 'one image node', true);
  return repo;
}

interface Idle {
  socket: Socket;
  /** admitted: HQ greeted it with SSH's ident line and waits for it; refused: HQ said why and closed it. */
  verdict: 'admitted' | 'refused';
  openedAt: number;
  /** When HQ closed it. */
  closed: Promise<number>;
  isOpen(): boolean;
}

/** A TCP connection to HQ from the loopback address `from` that never sends a byte. */
function idleConnection(port: number, from: string): Promise<Idle> {
  return new Promise((resolve, reject) => {
    const openedAt = Date.now();
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    opened.push(socket);
    let open = true;
    let heard = '';
    const closed = new Promise<number>((done) => socket.once('close', () => { open = false; done(Date.now()); }));
    socket.on('error', () => undefined);
    const decide = () => {
      if (heard.startsWith('SSH-2.0-')) resolve({ socket, verdict: 'admitted', openedAt, closed, isOpen: () => open });
      else if (heard.includes('\n')) resolve({ socket, verdict: 'refused', openedAt, closed, isOpen: () => open });
      else return false;
      socket.off('data', onData);
      return true;
    };
    const onData = (chunk: Buffer) => { heard += chunk.toString('latin1'); decide(); };
    socket.on('data', onData);
    void closed.then(() => { if (!decide()) reject(new Error(`closed with no word from HQ (heard ${JSON.stringify(heard)})`)); });
  });
}

/** `count` idle connections from `from`, one after another (so that the order of the verdicts is known). */
async function flood(port: number, from: string, count: number): Promise<Idle[]> {
  const made: Idle[] = [];
  for (let i = 0; i < count; i++) made.push(await idleConnection(port, from));
  return made;
}

/** Whether `check` comes true within `ms`, asked every 100 ms. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

const verdicts = (idle: Idle[]) => idle.map((i) => i.verdict[0]).join('');

/**
 * `git-receive-pack` started over SSH by hand, sent nothing: resolves once git's advertisement
 * has come (receive-pack runs, so the push holds its stack's lock). `ended` resolves with what
 * HQ wrote on stderr and the exit status once the channel closes.
 */
async function silentReceivePack(t: TestHq, stack: string): Promise<{
  client: ssh2.Client; channel: ssh2.ClientChannel; startedAt: number; ended: Promise<{ stderr: string; code: number | undefined; at: number }>;
}> {
  const client = new ssh2.Client();
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: t.hq.sshPort, username: 'quarry', privateKey: readFileSync(t.key), readyTimeout: 20_000 });
  });
  const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) => {
    client.exec(`git-receive-pack '/${stack}'`, (err, stream) => (err ? reject(err) : resolve(stream)));
  });
  let stderr = '';
  let code: number | undefined;
  channel.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  channel.on('exit', (status: number | null) => { code = status ?? undefined; });
  const ended = new Promise<{ stderr: string; code: number | undefined; at: number }>((resolve) => {
    channel.on('close', () => resolve({ stderr, code, at: Date.now() }));
  });
  await new Promise<void>((resolve) => channel.once('data', () => resolve()));
  return { client, channel, startedAt: Date.now(), ended };
}

test('a flood of connections that never log in is capped per address and in all, ended after sshAuthTimeout, and never stops a real push', async (tt) => {
  const authTimeout = 6000;
  let openAtLogin: number | undefined;
  let flood2: Idle[] = [];
  const t = await hqWith({ sshAuthTimeout: authTimeout, sshMaxUnauthenticated: 8, sshMaxUnauthenticatedPerAddress: 3 }, (line) => {
    if (/logged in with key/.test(line) && openAtLogin === undefined) openAtLogin = flood2.filter((i) => i.verdict === 'admitted' && i.isOpen()).length;
  });
  const port = t.hq.sshPort;
  const repo = await imageRepo(t);

  // The total cap: three addresses fill it (3 + 3 + 2); past it even a new address is refused.
  const a4 = await flood(port, '127.0.0.4', 3);
  const a5 = await flood(port, '127.0.0.5', 3);
  const a6 = await flood(port, '127.0.0.6', 3);
  tt.is(`${verdicts(a4)} ${verdicts(a5)} ${verdicts(a6)}`, 'aaa aaa aar');
  tt.is((await idleConnection(port, '127.0.0.7')).verdict, 'refused');
  // Not logged in within sshAuthTimeout: each is ended then, not before.
  for (const idle of [...a4, ...a5, ...a6.slice(0, 2)]) {
    const at = await idle.closed;
    tt.true(at - idle.openedAt >= authTimeout - 250, `ended after ${at - idle.openedAt} ms`);
  }
  tt.is(t.lines.filter((l) => /^ssh: 8 connections wait to log in \(sshMaxUnauthenticated\); refusing new ones while that many wait \(first refused: 127\.0\.0\.6\)$/.test(l)).length, 1);
  // (HQ sees each close a moment after the client does.)
  tt.true(await until(() => t.lines.some((l) => /^ssh: 4 connections wait to log in now; 2 were refused while 8 waited \(sshMaxUnauthenticated\), from 2 addresses$/.test(l)), 10_000), t.lines.join('\n'));
  tt.true(t.lines.some((l) => l === 'ssh 127.0.0.4: a connection did not log in within 6 s (sshAuthTimeout); ended'), t.lines.join('\n'));
  const gone = (address: string) => t.lines.some((l) => l.startsWith(`ssh ${address}: none of its connections waits to log in now`));
  tt.true(await until(() => ['127.0.0.4', '127.0.0.5', '127.0.0.6'].every(gone), 10_000), 'HQ counts none of them any more');

  // The per-address cap: two addresses flood, each is held to 3; a real push from a third gets in while they wait.
  flood2 = [...await flood(port, '127.0.0.2', 5), ...await flood(port, '127.0.0.3', 5)];
  tt.is(verdicts(flood2), 'aaarraaarr');
  const refused = flood2.filter((i) => i.verdict === 'refused');
  for (const idle of refused) tt.true((await idle.closed) - idle.openedAt < authTimeout / 2, 'a refused connection is closed at once');
  const stack = uniqueStack('flooded');
  const pushed = await push(t, repo, stack);
  tt.is(pushed.code, 0, pushed.stderr);
  tt.regex(pushed.stderr, new RegExp(`remote: -----> ${stack} accepted at [0-9a-f]{7}`));
  tt.is(openAtLogin, 6, 'the six flood connections still waited when the push logged in');
  // Logged once per address, not once per refusal.
  tt.is(t.lines.filter((l) => l.startsWith('ssh 127.0.0.2: 3 of its connections wait to log in (sshMaxUnauthenticatedPerAddress)')).length, 1, t.lines.join('\n'));
  for (const idle of flood2) await idle.closed;
  tt.true(await until(() => t.lines.some((l) => /^ssh 127\.0\.0\.2: none of its connections waits to log in now; in all 2 refused \(sshMaxUnauthenticatedPerAddress\), 3 ended for not logging in within 6 s \(sshAuthTimeout\)$/.test(l)), 10_000), t.lines.join('\n'));
});

test('a receive-pack sent nothing is ended after pushIdleTimeout, and the push that waited for its lock then proceeds', async (tt) => {
  const idleMs = 3000;
  const t = await hqWith({ pushIdleTimeout: idleMs });
  const stack = uniqueStack('idle');
  const repo = await imageRepo(t);
  const silent = await silentReceivePack(t, stack);

  // A real push of the same stack meanwhile: it waits for the silent one. Until HQ says it
  // waits, and at least once, the silent one sends a byte of a pkt-line's length (git then
  // waits for the rest): each byte starts its idle time anew.
  const pushing = push(t, repo, stack);
  const queued = () => t.lines.some((l) => l.startsWith(`push ${stack} by SHA256:`) && l.includes(`waits for the push of ${stack} by key pusher@test`));
  let sent = 0;
  let lastByteAt = silent.startedAt;
  while (sent < 3 && (sent === 0 || !queued())) {
    await new Promise((resolve) => setTimeout(resolve, idleMs / 2));
    silent.channel.write('0');
    lastByteAt = Date.now();
    sent += 1;
  }
  tt.true(await until(queued, 30_000), t.lines.join('\n'));

  const ended = await silent.ended;
  tt.true(ended.at - lastByteAt >= idleMs - 250, `ended ${ended.at - lastByteAt} ms after its last byte`);
  tt.true(ended.at - silent.startedAt >= idleMs * 1.5 - 250, 'its bytes kept it going past one idle time');
  tt.is(ended.code, 1);
  tt.regex(ended.stderr, /quarry: this push sent nothing for 3 s; it is ended and nothing was changed \(pushIdleTimeout in HQ's config/);
  tt.true(t.lines.some((l) => new RegExp(`^push ${stack} by SHA256:\\S+: the pusher sent nothing for 3 s \\(pushIdleTimeout\\); git receive-pack ended, the stack's lock let go$`).test(l)), t.lines.join('\n'));

  const pushed = await pushing;
  tt.is(pushed.code, 0, pushed.stderr);
  tt.regex(pushed.stderr, new RegExp(`quarry: the push of ${stack} by key pusher@test \\(SHA256:[A-Za-z0-9+/]+\\) from 127\\.0\\.0\\.1 is running ` +
    '\\(since \\d\\d:\\d\\d:\\d\\d UTC\\); this push waits for it to finish, at most 10 min \\(pushLockWait\\)'));
  tt.regex(pushed.stderr, new RegExp(`remote: -----> ${stack} accepted at [0-9a-f]{7}`));
  tt.not(await refOf(t.home.repo(stack)), '');
});

test('the hook\'s own work is not timed as idle: a deploy that says nothing for longer than pushIdleTimeout goes through', async (tt) => {
  let deployed = false;
  const t = await hqWith({
    pushIdleTimeout: 3000,
    onRelease: async () => {
      await new Promise((resolve) => setTimeout(resolve, 6000));
      deployed = true;
    },
  });
  const stack = uniqueStack('slowdeploy');
  const pushed = await push(t, await imageRepo(t), stack);
  tt.is(pushed.code, 0, pushed.stderr);
  tt.true(deployed);
  tt.notRegex(pushed.stderr, /pushIdleTimeout/);
  tt.not(await refOf(t.home.repo(stack)), '');
});

test('a pusher that takes nothing of git\'s report after the verdict is ended after pushIdleTimeout, and the push behind it proceeds', async (tt) => {
  // The deploy says more than all the buffers between git and the pusher hold (the SSH window,
  // the pipes), and the pusher reads only the first bytes: git blocks on its report, and would
  // hold the stack's lock for ever.
  let chatty = true;
  const t = await hqWith({
    pushIdleTimeout: 2000,
    onRelease: async (_stack, _src, _spec, progress) => {
      if (!chatty) return;
      chatty = false;
      const line = 'x'.repeat(100);
      for (let i = 0; i < 100_000; i++) progress.info(line);
    },
  });
  const stack = uniqueStack('unread');
  const repo = await imageRepo(t);
  const wrapper = join(t.dir, 'ssh-reads-little.sh');
  // dd a byte at a time: git gets the advertisement at once (head -c holds it back), then nothing more.
  writeFileSync(wrapper, '#!/bin/sh\nssh "$@" | { dd bs=1 count=3000 2>/dev/null; exec sleep 60; }\n', { mode: 0o755 });
  const env = gitEnv(t.key, t.hq.sshPort);
  const stuck = spawn('git', ['push', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${stack}`, 'main'], {
    cwd: repo, env: { ...env, GIT_SSH_COMMAND: `sh ${wrapper} ${env.GIT_SSH_COMMAND!.replace(/^ssh /, '')}`, GIT_SSH_VARIANT: 'ssh' },
    detached: true, stdio: 'ignore',
  });
  tt.teardown(() => { try { process.kill(-stuck.pid!, 'SIGKILL'); } catch { /* gone */ } });

  const verdict = await until(() => t.lines.some((l) => l.includes(`push ${stack} by `) && l.includes('after the hook\'s verdict')), 60_000);
  tt.true(verdict, t.lines.join('\n'));
  tt.true(t.lines.some((l) => new RegExp(`^push ${stack} by SHA256:\\S+: the pusher took nothing from git receive-pack for 2 s after the hook's verdict \\(pushIdleTimeout\\); ended`).test(l)), t.lines.join('\n'));
  writeFileSync(join(repo, 'quarry.yml'), `${readFileSync(join(repo, 'quarry.yml'), 'utf8')}# again\n`);
  const second = await commitAll(repo, 'again');
  const pushed = await push(t, repo, stack);
  tt.is(pushed.code, 0, pushed.stderr.slice(-2000));
  tt.is(await refOf(t.home.repo(stack)), second);
});

test('a push that waits past pushLockWait gives up naming the push that holds the lock; once that ends, the next push proceeds', async (tt) => {
  // sshAuthTimeout well below both pushes' lives: a connection that has logged in is no longer timed by it.
  const t = await hqWith({ pushIdleTimeout: 120_000, pushLockWait: 5000, sshAuthTimeout: 3000 });
  const stack = uniqueStack('locked');
  const repo = await imageRepo(t);
  const silent = await silentReceivePack(t, stack);
  let holderAlive = true;
  void silent.ended.then(() => { holderAlive = false; });

  const started = Date.now();
  const waited = await push(t, repo, stack);
  tt.true(Date.now() - started >= 4800, `gave up after ${Date.now() - started} ms`);
  tt.not(waited.code, 0);
  tt.regex(waited.stderr, new RegExp(`quarry: the push of ${stack} by key pusher@test \\(SHA256:[A-Za-z0-9+/]+\\) from 127\\.0\\.0\\.1 is running ` +
    '\\(since \\d\\d:\\d\\d:\\d\\d UTC\\); this push waits for it to finish, at most 5 s \\(pushLockWait\\)'));
  tt.regex(waited.stderr, new RegExp(`quarry: this push gave up after waiting 5 s for ${stack}: the push of ${stack} by key pusher@test ` +
    '\\(SHA256:[A-Za-z0-9+/]+\\) from 127\\.0\\.0\\.1 holds its lock \\(since \\d\\d:\\d\\d:\\d\\d UTC\\); push again once that has finished, ' +
    'or raise "pushLockWait" in HQ\'s config'));
  tt.is(await refOf(t.home.repo(stack)), '');
  tt.true(t.lines.some((l) => l.includes(`push ${stack} by SHA256:`) && l.includes('gave up after waiting 5 s')), t.lines.join('\n'));

  // The silent one's pusher goes away: receive-pack gets end of input and exits, the lock is
  // let go, and a push now finds the queue as it should be.
  tt.true(holderAlive, 'the holder, logged in, outlived sshAuthTimeout');
  silent.client.end();
  await silent.ended;
  const pushed = await push(t, repo, stack);
  tt.is(pushed.code, 0, pushed.stderr);
  tt.notRegex(pushed.stderr, /waits for it to finish/);
  tt.not(await refOf(t.home.repo(stack)), '');
});
