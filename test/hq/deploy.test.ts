import test from 'ava';
import Docker from 'dockerode';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startControl, type ControlHandle } from '../../hq/index.js';
import { listContainers, removeContainer } from '../../launcher/index.js';
import { startRouter, type Router } from '../../router/index.js';
import { readStats } from '../../runtime/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { httpGet, httpGetWhenUp } from '../support/http.js';
import { until } from '../support/until.js';
import {
  commitAll, docsearchRepo, gitEnv, push, removeStacks, run, startTestHq, uniqueStack, type TestHq,
} from './harness.js';

// One HQ with the part that runs stacks, its etcd and its router, for the file; every test
// pushes its own stack under its own domain, so they can run side by side.
const docker = new Docker();
let etcd: TestEtcd;
let router: Router;
let control: ControlHandle;
let t: TestHq;
const stacks: string[] = [];
const noProgress = { step() {}, info() {}, error() {} };

test.before(async () => {
  etcd = await startEtcd();
  // Reporting as HQ's embedded router does (`/quarry/routers/hq`): a DEPLOY waits on its record.
  router = await startRouter({ port: 0, host: '127.0.0.1', etcd: etcd.client, admin: { port: 0 }, report: { id: 'hq' } });
  let handle: ControlHandle | undefined;
  t = await startTestHq({ onRelease: (...args) => handle!.onRelease(...args) });
  handle = await startControl({ home: t.home, etcd: etcd.client, docker, log: () => {}, config: { routerPort: router.port }, drainMs: 300 });
  control = handle;
});

test.after.always(async () => {
  await removeStacks(stacks);
  await control?.close();
  await t?.close();
  await router?.close();
  await etcd?.stop();
});

/** A copy of the example as its own stack, answering on `<stack>.localhost`. */
async function stackRepo(base: string): Promise<{ stack: string; repo: string; domain: string }> {
  const stack = uniqueStack(base);
  stacks.push(stack);
  const repo = await docsearchRepo(t.dir);
  const domain = `${stack}.localhost`;
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace('docsearch.localhost', domain));
  await commitAll(repo, 'own domain');
  return { stack, repo, domain };
}

const viaRouter = (domain: string, path: string) => httpGet(`http://127.0.0.1:${router.port}${path}`, 5000, { Host: domain });

test('a push runs the stack: services, elements and web, routed by domain; the web node finds its service by env and the indexer by the topology', async (tt) => {
  const { stack, repo, domain } = await stackRepo('deploy');
  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  tt.regex(r.stderr, /remote: -----> Starting service store/);
  tt.regex(r.stderr, /remote: -----> Deploying web web: 2 containers/);
  tt.regex(r.stderr, new RegExp(`remote: -----> ${stack} v1 is live: http://${domain}:${router.port}/`));

  const health = await httpGetWhenUp(`http://127.0.0.1:${router.port}/healthz`, 20_000, { Host: domain });
  tt.is(health.status, 200);
  // The crawler feeds the categorizer and the indexer; the web node's search asks the indexer.
  let found: { results: unknown[]; searches: number } | undefined;
  for (let i = 0; i < 60 && !(found && found.results.length > 0); i++) {
    const res = await viaRouter(domain, '/search?q=danube');
    if (res.status === 200) found = JSON.parse(res.body);
    else await new Promise((r) => setTimeout(r, 500));
  }
  tt.deepEqual(found?.results.map((r) => (r as { path: string }).path), ['rivers.txt'], JSON.stringify(found));
  tt.true((found?.searches ?? 0) >= 1, 'the web node counted the search in the store service');

  const rows = await control.ps(stack);
  tt.deepEqual([...new Set(rows.map((r) => r.name))].sort(), ['categorize', 'crawl', 'index', 'store', 'web']);
  tt.is(rows.filter((r) => r.name === 'web').length, 2);
  tt.is(rows.filter((r) => r.name === 'categorize').length, 1, 'a load shard starts at its min');
  tt.true(rows.every((r) => r.state === 'running' && r.release === 'v1'), JSON.stringify(rows));
  tt.true(rows.filter((r) => r.name === 'web').every((r) => r.health === 'healthy'));

  const env = await etcd.client.getAll().prefix(`/quarry/stacks/${stack}/env/`).strings();
  tt.is(env[`/quarry/stacks/${stack}/env/STORE_HOST`], 'store');
  tt.is(env[`/quarry/stacks/${stack}/env/STORE_PORT`], '6379');
  const routes = await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).keys();
  tt.is(routes.length, 2);

  const releases = await control.releases(stack);
  tt.is(releases[0]?.version, 1);
  tt.deepEqual(releases[0]?.scale.web, 2);

  // The stack's control key: made by the first push, 0600 in the stack's folder, in every
  // element container's env and nowhere else (not a label, not an argument); its control socket answers it alone.
  const keyFile = join(t.home.stackDir(stack), 'control.key');
  const key = readFileSync(keyFile, 'utf8');
  tt.regex(key, /^[0-9a-f]{64}$/);
  tt.is(statSync(keyFile).mode & 0o777, 0o600);
  for (const c of await listContainers(docker, stack)) {
    const info = await docker.getContainer(c.id).inspect();
    // Elements and the web node (it has topology ports), not the store service.
    const wired = ['crawl', 'categorize', 'index', 'web'].includes(c.unit);
    tt.is(info.Config.Env.includes(`QUARRY_CONTROL_KEY=${key}`), wired, `${c.name}: the key in a wired unit's env, in no other`);
    tt.false(JSON.stringify(info.Config.Labels ?? {}).includes(key), `${c.name}: not in a label`);
    tt.false(JSON.stringify([info.Path, info.Args, info.Config.Cmd, info.Config.Entrypoint]).includes(key), `${c.name}: not in its arguments`);
  }
  const categorize = (await listContainers(docker, stack, 'categorize'))[0]!;
  const ip = Object.values((await docker.getContainer(categorize.id).inspect()).NetworkSettings.Networks)[0]!.IPAddress;
  const socket = `tcp://${ip}:7000`;
  await tt.throwsAsync(readStats(socket, { key: 'f'.repeat(64) }), { message: /refused/ });
  tt.is((await readStats(socket, { key })).element, 'categorize');
});

test('a second push under a loop of requests: no request fails, and the new version is served; a broken push changes nothing', async (tt) => {
  const { stack, repo, domain } = await stackRepo('redeploy');
  tt.is((await push(t, repo, stack)).code, 0);
  await httpGetWhenUp(`http://127.0.0.1:${router.port}/healthz`, 20_000, { Host: domain });
  const keyBefore = readFileSync(join(t.home.stackDir(stack), 'control.key'), 'utf8');

  const server = join(repo, 'web', 'server.js');
  writeFileSync(server, readFileSync(server, 'utf8').replace("res.end('ok')", "res.end('ok v2')"));
  await commitAll(repo, 'v2');

  let stop = false;
  const failures: string[] = [];
  let served = 0;
  const loop = (async () => {
    while (!stop) {
      try {
        const res = await viaRouter(domain, '/healthz');
        if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
        else served++;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  })();
  const r = await push(t, repo, stack);
  stop = true;
  await loop;
  tt.is(r.code, 0, r.stderr);
  tt.deepEqual(failures, []);
  tt.true(served > 0);
  tt.notRegex(r.stderr, /had not applied the route change|still in flight after/, 'the router applied the change and drained within the wait');
  tt.is((await viaRouter(domain, '/healthz')).body, 'ok v2');
  tt.regex(r.stderr, /Deploying web web/);
  tt.notRegex(r.stderr, /Deploying element/, 'only the changed node is deployed (the control key, stable per stack, replaces nothing)');
  tt.is(readFileSync(join(t.home.stackDir(stack), 'control.key'), 'utf8'), keyBefore, 'the control key stays across pushes');

  // A push whose web node never becomes healthy fails; v2 keeps serving.
  writeFileSync(server, 'process.exit(3);\n');
  await commitAll(repo, 'broken');
  const broken = await push(t, repo, stack);
  tt.not(broken.code, 0);
  tt.regex(broken.stderr, /exited with code 3|being restarted/);
  tt.regex(broken.stderr, /what ran keeps running/);
  tt.is((await viaRouter(domain, '/healthz')).body, 'ok v2');
  const web = (await control.ps(stack)).filter((r) => r.name === 'web');
  tt.is(web.length, 2, JSON.stringify(web));
  tt.true(web.every((r) => r.release === 'v2'));

  // Another stack naming the same domain is refused, naming both; this one keeps serving.
  const rival = await stackRepo('rival');
  const yml = join(rival.repo, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(rival.domain, domain));
  await commitAll(rival.repo, 'same domain');
  const claimed = await push(t, rival.repo, rival.stack);
  tt.not(claimed.code, 0);
  tt.regex(claimed.stderr, new RegExp(`domain ${domain} is already routed to stack '${stack}'.*stack '${rival.stack}'`));
  tt.is((await viaRouter(domain, '/healthz')).body, 'ok v2');
  tt.deepEqual(await control.ps(rival.stack).catch(() => []), []);
});

test('scale up and down moves the routes; env change and rollback restore code, env and scale together', async (tt) => {
  const { stack, repo, domain } = await stackRepo('scale');
  tt.is((await push(t, repo, stack)).code, 0);
  const routesOf = async () => (await etcd.client.getAll().prefix(`/quarry/routes/${domain}/`).keys()).length;

  const up = await control.scale(stack, { web: 3 }, noProgress);
  tt.is(up.scale.web, 3);
  tt.is(await routesOf(), 3);
  const down = await control.scale(stack, { web: 1 }, noProgress);
  tt.is(down.scale.web, 1);
  tt.is(await routesOf(), 1);
  tt.is((await control.ps(stack)).filter((r) => r.name === 'web').length, 1);

  await tt.throwsAsync(control.scale(stack, { nope: 2 }, noProgress), { message: /no node or element 'nope'/ });
  await tt.throwsAsync(control.scale(stack, { store: 2 }, noProgress), { message: /is a service/ });

  const withEnv = await control.setEnv(stack, { GREETING: 'hello' }, [], noProgress);
  tt.deepEqual(withEnv.envKeys, ['GREETING']);
  tt.deepEqual(await control.env(stack), { GREETING: 'hello' });
  const web = (await listContainers(docker, stack, 'web'))[0]!;
  const inspected = await docker.getContainer(web.id).inspect();
  tt.true(inspected.Config.Env.includes('GREETING=hello'));
  tt.is(withEnv.scale.web, 1, 'an env change keeps the scale set by quarry scale');

  const back = await control.rollback(stack, 1, noProgress);
  tt.is(back.version, 5);
  tt.deepEqual(back.envKeys, []);
  tt.is(back.scale.web, 2);
  tt.is(await routesOf(), 2);
  const after = (await listContainers(docker, stack, 'web'))[0]!;
  tt.false((await docker.getContainer(after.id).inspect()).Config.Env.includes('GREETING=hello'));
  tt.is((await viaRouter(domain, '/healthz')).status, 200);
  tt.deepEqual((await control.releases(stack)).map((r) => r.description), [
    'rollback to v1', 'env set GREETING', 'scale web=1', 'scale web=3', `push of ${(await control.releases(stack)).at(-1)!.commit.slice(0, 7)}`,
  ]);
  await tt.throwsAsync(control.rollback(stack, 42, noProgress), { message: /has no release v42/ });
});

test('a changed service keeps running on a push, with a notice; git push -o replace=store starts it anew; an unknown push option is refused', async (tt) => {
  const { stack, repo } = await stackRepo('replace');
  tt.is((await push(t, repo, stack)).code, 0);
  const [before] = await listContainers(docker, stack, 'store');
  const storeJs = join(repo, 'store', 'server.js');
  writeFileSync(storeJs, `${readFileSync(storeJs, 'utf8')}\n// changed\n`);
  await commitAll(repo, 'store changed');

  const kept = await push(t, repo, stack);
  tt.is(kept.code, 0, kept.stderr);
  tt.regex(kept.stderr, /note: service 'store' changed/);
  tt.regex(kept.stderr, /git push -o replace=store/);
  tt.is((await listContainers(docker, stack, 'store'))[0]?.id, before!.id, 'the service was left running');

  // A push runs the hook only when a ref moves: each of these pushes a new commit.
  writeFileSync(join(repo, 'NOTES'), 'one\n');
  await commitAll(repo, 'notes');
  const odd = await run('git', ['push', '--porcelain', '-o', 'restart=store', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${stack}`, 'main'], { cwd: repo, env: gitEnv(t.key, t.hq.sshPort) });
  tt.not(odd.code, 0);
  tt.regex(odd.stderr, /push option 'restart=store' is not known/);

  writeFileSync(join(repo, 'NOTES'), 'two\n');
  await commitAll(repo, 'notes again');
  const replaced = await run('git', ['push', '--porcelain', '-o', 'replace=store', `ssh://quarry@127.0.0.1:${t.hq.sshPort}/${stack}`, 'main'], { cwd: repo, env: gitEnv(t.key, t.hq.sshPort) });
  tt.is(replaced.code, 0, replaced.stderr);
  tt.regex(replaced.stderr, /Stopping store/);
  tt.regex(replaced.stderr, /Starting service store/);
  const [after] = await listContainers(docker, stack, 'store');
  tt.not(after?.id, before!.id);
  tt.is(after?.state, 'running');
});

test('small mode: HQ is the caretaker of its engine; a web container and the service killed with SIGKILL come back, the same containers, and the site answers; ps counts the restarts', async (tt) => {
  const { stack, repo, domain } = await stackRepo('care');
  const r = await push(t, repo, stack);
  tt.is(r.code, 0, r.stderr);
  await httpGetWhenUp(`http://127.0.0.1:${router.port}/healthz`, 20_000, { Host: domain });
  const before = await control.ps(stack);
  const victims = before.filter((row) => row.name === 'store' || row.container === before.find((x) => x.name === 'web')!.container);
  tt.is(victims.length, 2);
  for (const v of victims) {
    const info = await docker.getContainer(v.container).inspect();
    tt.is(info.HostConfig.RestartPolicy?.Name, 'no', 'docker does not restart it: the caretaker does');
    process.kill(info.State.Pid, 'SIGKILL');
  }
  for (const v of victims) {
    const row = await until(`${v.container} restarted`, async () => {
      const now = (await control.ps(stack)).find((x) => x.container === v.container);
      return now && now.state === 'running' && now.restarts === 1 ? now : undefined;
    });
    tt.is(row.lastExit?.code, 137, `${v.container}: killed by SIGKILL`);
  }
  const after = await control.ps(stack);
  tt.deepEqual(after.map((x) => x.container), before.map((x) => x.container), 'the same containers, none replaced');
  const res = await until('a search through the router', async () => {
    const s = await viaRouter(domain, '/search?q=danube');
    return s.status === 200 ? s : undefined;
  });
  tt.true((JSON.parse(res.body) as { searches: number }).searches >= 1, 'the web node counts searches in the restarted store again');
});
