import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { addAuthorizedKey } from '../../hq/index.js';
import { HomeLayout } from '../../home/index.js';
import { listContainers, removeContainer } from '../../launcher/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { freePort } from '../support/ports.js';
import { commitAll, docsearchRepo, gitEnv, makeKey, removeStackImages, tempDir, uniqueStack } from './harness.js';

const docker = new Docker();
const here = new URL('.', import.meta.url).pathname;

function startChild(home: string, etcd: string, sshPort: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'hq-child.ts')], {
    env: { ...process.env, HQ_HOME: home, HQ_ETCD: etcd, HQ_SSH_PORT: String(sshPort) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().startsWith('ready')) resolve(child); });
    child.once('exit', (code) => reject(new Error(`HQ exited with ${code}`)));
  });
}

let etcd: TestEtcd;
test.before(async () => { etcd = await startEtcd(); });
test.after.always(async () => { await etcd?.stop(); });

test('HQ killed with SIGKILL in the middle of a deploy: on restart the task is undone, the last release serves, nothing is orphaned', async (t) => {
  const dir = tempDir('quarry-crash-');
  const home = new HomeLayout(join(dir, 'home'));
  const key = await makeKey(dir, 'pusher');
  addAuthorizedKey(home, readFileSync(`${key}.pub`, 'utf8'), 'pusher.pub');
  const stack = uniqueStack('crash');
  const sshPort = await freePort();
  let hq = await startChild(home.root, etcd.endpoint, sshPort);
  t.teardown(async () => {
    hq.kill('SIGKILL');
    for (const c of await listContainers(docker, stack)) await removeContainer(docker, c.id, 1);
    await docker.getNetwork(`quarry-${stack}`).remove().catch(() => undefined);
    await removeStackImages(stack);
  });

  const repo = await docsearchRepo(dir);
  const pushTo = () => spawn('git', ['push', `ssh://quarry@127.0.0.1:${sshPort}/${stack}`, 'main'], { cwd: repo, env: gitEnv(key, sshPort) });
  const first = pushTo();
  await new Promise((resolve) => first.once('exit', resolve));
  t.is(first.exitCode, 0);
  const v1 = await listContainers(docker, stack, 'web');
  t.is(v1.length, 2);

  // A second push of the web node; HQ dies once its first new container has started.
  const server = join(repo, 'web', 'server.js');
  writeFileSync(server, readFileSync(server, 'utf8').replace("res.end('ok')", "res.end('ok v2')"));
  await commitAll(repo, 'v2');
  const second = pushTo();
  let output = '';
  await new Promise<void>((resolve) => {
    second.stderr!.on('data', (b: Buffer) => {
      output += b.toString();
      if (new RegExp(`started ${stack}\\.web\\.3`).test(output)) resolve();
    });
  });
  hq.kill('SIGKILL');
  await new Promise((resolve) => second.once('exit', resolve));
  t.not(second.exitCode, 0, 'the push is rejected: HQ went away before the ref moved');
  t.true((await listContainers(docker, stack, 'web')).length > 2, 'a new container was running when HQ died');

  hq = await startChild(home.root, etcd.endpoint, sshPort);
  const web = await listContainers(docker, stack, 'web');
  t.deepEqual(web.map((c) => c.id).sort(), v1.map((c) => c.id).sort(), 'the v1 containers serve, the new one is gone');
  const routes = await etcd.client.getAll().prefix('/quarry/routes/').strings();
  const mine = Object.entries(routes).filter(([k]) => k.includes(`/${stack}.`));
  t.is(mine.length, 2);
  t.true(mine.every(([k, v]) => v1.some((c) => k.endsWith(`/${c.name}`) && v === `http://${c.ip}:8080`)), JSON.stringify(mine));
  const tasks = readdirSync(join(home.root, 'tasks')).map((f) => JSON.parse(readFileSync(join(home.root, 'tasks', f), 'utf8')));
  t.deepEqual(tasks.map((x) => x.state).sort(), ['done', 'undone']);
  const undone = tasks.find((x) => x.state === 'undone');
  t.true(undone.messages.some((m: { text: string }) => /HQ restarted during this task: undoing it/.test(m.text)));
  const all = await listContainers(docker, stack);
  t.true(all.every((c) => c.release === 'v1' && c.state === 'running'), JSON.stringify(all.map((c) => [c.name, c.release, c.state])));
});
