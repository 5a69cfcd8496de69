import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { EtcdStartError } from '../../hq/errors.js';
import { HomeLayout } from '../../home/index.js';
import { startOwnEtcd, type OwnEtcd } from '../../hq/etcd/etcd-server.js';
import { repoRoot } from '../support/cli.js';
import { freePort } from '../support/ports.js';

function home(t: { teardown(fn: () => void): void }): HomeLayout {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-own-etcd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new HomeLayout(join(dir, 'home'));
}

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits up to 20 s for `check` to hold; resolves with whether it did (for the test to assert). */
async function eventually(check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function stopLater(t: { teardown(fn: () => Promise<void>): void }, etcd: OwnEtcd): void {
  t.teardown(() => etcd.stop());
}

test('starts on 127.0.0.1 with its data under home, answers, keeps data across a restart, and stops', async (t) => {
  const h = home(t);
  const etcd = await startOwnEtcd({ home: h, port: 0 });
  stopLater(t, etcd);
  t.regex(etcd.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.true(existsSync(join(h.etcdDir, 'member')));
  t.deepEqual(JSON.parse(readFileSync(h.etcdPidFile, 'utf8')), { pid: etcd.pid, dataDir: h.etcdDir, endpoint: etcd.endpoint });
  const client = new Etcd3({ hosts: etcd.endpoint });
  await client.put('/quarry/test').value('kept');
  client.close();

  await etcd.stop();
  t.false(running(etcd.pid));
  t.false(existsSync(h.etcdPidFile));

  // Restarted on other ports (0 picks new ones), it has the same data.
  const again = await startOwnEtcd({ home: h, port: 0 });
  stopLater(t, again);
  const client2 = new Etcd3({ hosts: again.endpoint });
  t.is(await client2.get('/quarry/test').string(), 'kept');
  client2.close();
});

test('an HQ killed with SIGKILL takes its etcd with it (the kernel signals etcd when its parent dies)', async (t) => {
  const h = home(t);
  // An "HQ" in a child process starts its etcd, then is killed with SIGKILL before stopping it.
  const script = join(h.root, '..', 'hq.mts');
  writeFileSync(script, `
    import { HomeLayout } from ${JSON.stringify(join(repoRoot, 'home/index.ts'))};
    import { startOwnEtcd } from ${JSON.stringify(join(repoRoot, 'hq/index.ts'))};
    const etcd = await startOwnEtcd({ home: new HomeLayout(${JSON.stringify(h.root)}), port: 0 });
    process.stdout.write(JSON.stringify({ pid: etcd.pid }) + '\\n');
    setInterval(() => undefined, 1000);
  `);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env } });
  t.teardown(() => { child.kill('SIGKILL'); });
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`the HQ stand-in exited with ${code}`)));
  });
  const { pid } = JSON.parse(line) as { pid: number };
  t.true(running(pid));
  const endpoint = (JSON.parse(readFileSync(h.etcdPidFile, 'utf8')) as { endpoint: string }).endpoint;
  child.kill('SIGKILL');
  // With setpriv, etcd is told of its parent's death by the kernel and goes by itself.
  t.true(await eventually(() => !running(pid)), `etcd (pid ${pid}) ended within 20 s of its HQ's SIGKILL`);
  // And nothing answers at its client port any more.
  const client = new Etcd3({ hosts: endpoint, dialTimeout: 1000 });
  t.teardown(() => client.close());
  await t.throwsAsync(client.get('/quarry/ping').string());
});

test('a left-over etcd still running (its HQ gone without the kernel telling it) is ended at the next start', async (t) => {
  const h = home(t);
  h.ensure(h.runDir);
  h.ensure(h.etcdDir);
  // An etcd on this home's data, started by nobody HQ knows, recorded in the pid file.
  const clientPort = await freePort();
  const peerPort = await freePort();
  const stray = spawn('etcd', [
    '--name', 'hq', '--data-dir', h.etcdDir,
    '--listen-client-urls', `http://127.0.0.1:${clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `hq=http://127.0.0.1:${peerPort}`,
  ], { stdio: 'ignore' });
  t.teardown(() => { stray.kill('SIGKILL'); });
  writeFileSync(h.etcdPidFile, JSON.stringify({ pid: stray.pid, dataDir: h.etcdDir, endpoint: `http://127.0.0.1:${clientPort}` }));
  const strayGone = new Promise((r) => stray.once('exit', r));

  const lines: string[] = [];
  const etcd = await startOwnEtcd({ home: h, port: 0, log: (l) => lines.push(l) });
  stopLater(t, etcd);
  await strayGone;
  t.true(lines.some((l) => l.includes(`ending the etcd left over by an HQ that did not stop cleanly (pid ${stray.pid})`)));
  t.not(etcd.pid, stray.pid);
});

test('a pid file naming some other process leaves that process alone', async (t) => {
  const h = home(t);
  h.ensure(h.runDir);
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => { other.kill('SIGKILL'); });
  writeFileSync(h.etcdPidFile, JSON.stringify({ pid: other.pid, dataDir: h.etcdDir, endpoint: 'http://127.0.0.1:1' }));
  const etcd = await startOwnEtcd({ home: h, port: 0 });
  stopLater(t, etcd);
  t.true(running(other.pid!));
});

test('a port in use stops the start with a message naming the port and the setting', async (t) => {
  const h = home(t);
  // A listener that takes connections and never answers (etcd's client waits on it).
  const sockets = new Set<Socket>();
  const taken: Server = createServer((socket) => sockets.add(socket));
  const port = await freePort();
  await new Promise<void>((r) => taken.listen(port, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    for (const socket of sockets) socket.destroy();
    taken.close(() => r());
  }));
  const err = await t.throwsAsync(startOwnEtcd({ home: h, port }), { instanceOf: EtcdStartError });
  t.regex(err?.message ?? '', new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} or :${port + 1}: in use; set "etcdPort"`));
  t.false(existsSync(h.etcdPidFile));
});
