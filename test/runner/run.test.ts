// `quarry run` of the example stack with the real executable, in both modes: it answers a
// search through the local port (routing by Host) with real results, and Ctrl-C leaves no
// process, container or network behind.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LABELS, networkName } from '../../launcher/index.js';
import { docker } from '../support/docker.js';
import { httpGetWhenUp } from '../support/http.js';
import { quarry } from '../support/cli.js';
import { exampleCopy, processesUnder, quarryChild, untilUp } from './stack-copy.js';

async function searchRivers(port: number): Promise<{ q: string; results: { path: string; category: string }[]; searches: number }> {
  // The crawl reaches the index a moment after the stack is up: ask until the document is there.
  for (let i = 0; ; i++) {
    const res = await httpGetWhenUp(`http://127.0.0.1:${port}/search?q=rivers`, 20_000, { host: 'docsearch.localhost' });
    const body = JSON.parse(res.body) as Awaited<ReturnType<typeof searchRivers>>;
    if (res.status === 200 && body.results.length > 0) return body;
    if (i > 100) throw new Error(`no results: ${res.status} ${res.body}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('--processes: the example answers a search; Ctrl-C stops every process', async (t) => {
  const name = `dsp${process.pid}`;
  const { dir, home } = exampleCopy(t, name);
  const run = quarryChild(['run', dir, '--processes', '--port', '0'], { QUARRY_HOME: home });
  t.teardown(() => {
    run.child.kill('SIGKILL');
    for (const pid of processesUnder(dir)) process.kill(pid, 'SIGKILL');
  });
  const port = await untilUp(run);
  t.true(existsSync(join(home, 'run', 'stacks', `${name}.json`)), 'the run is recorded while it runs');

  const body = await searchRivers(port);
  t.deepEqual(body.results.map((r) => [r.path, r.category]), [['rivers.txt', 'nature']]);
  t.true(body.searches >= 1, 'the web node counted the search in the store service (STORE_HOST/STORE_PORT)');
  t.regex(run.stdout(), /^web\.[01] +\| web listening on \d+$/m, 'output is prefixed by name.member');
  const unknown = await httpGetWhenUp(`http://127.0.0.1:${port}/`, 5000, { host: 'nope.localhost' });
  t.is(unknown.status, 404, 'a host no web node serves is 404');

  t.true(processesUnder(dir).length >= 6, 'store, index, categorize, crawl and two web members run');
  // The run's control key reaches its element processes through the env, never their arguments.
  const keys = new Set<string>();
  for (const pid of processesUnder(dir)) {
    try {
      const key = /(?:^|\0)QUARRY_CONTROL_KEY=([^\0]*)/.exec(readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1];
      if (key === undefined) continue;
      keys.add(key);
      t.false(readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(key), `${pid}: the key is not in its arguments`);
    } catch {
      // a process gone meanwhile
    }
  }
  t.is(keys.size, 1, 'one key for the run, given to its element processes');
  t.regex([...keys][0] ?? '', /^[0-9a-f]{64}$/);
  run.child.kill('SIGINT');
  t.is(await run.exited, 0, run.stderr());
  t.regex(run.stderr(), /stopped; nothing of it is left running/);
  t.deepEqual(processesUnder(dir), [], 'no process of the stack is left');
  t.false(existsSync(join(home, 'run', 'stacks', `${name}.json`)), 'the run record is gone');
});

test('containers: the example answers a search; Ctrl-C removes every container and the network', async (t) => {
  const name = `dsd${process.pid}`;
  const { dir, home } = exampleCopy(t, name);
  const leftovers = async () => docker.listContainers({ all: true, filters: { label: [`${LABELS.stack}=${name}`] } });
  t.teardown(async () => {
    for (const c of await leftovers()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    await docker.getNetwork(networkName(name)).remove().catch(() => undefined);
    // By tag, never by id: a class image of the example has the same id as other tests' (the
    // same build), and removing the id would take their tags with it.
    for (const image of await docker.listImages({ filters: { reference: [`quarry/${name}-*`] } })) {
      for (const tag of (image.RepoTags ?? []).filter((x) => x.startsWith(`quarry/${name}-`))) {
        await docker.getImage(tag).remove().catch(() => undefined);
      }
    }
  });
  const run = quarryChild(['run', dir, '--port', '0'], { QUARRY_HOME: home });
  t.teardown(() => run.child.kill('SIGKILL'));
  const port = await untilUp(run);
  t.regex(run.stderr(), /building element class indexer/);

  const body = await searchRivers(port);
  t.deepEqual(body.results.map((r) => [r.path, r.category]), [['rivers.txt', 'nature']]);
  const names = (await leftovers()).map((c) => c.Names[0]!.replace(/^\//, '')).sort();
  t.deepEqual(names, ['categorize.0', 'crawl.0', 'index.0', 'store.0', 'web.0', 'web.1'].map((n) => `${name}.${n}`));
  // The run's control key: in each wired container's env (the elements, and the web node with
  // its topology port), in no label and no argument; not in the store service's.
  const keys = new Set<string>();
  for (const c of await leftovers()) {
    const info = await docker.getContainer(c.Id).inspect();
    const key = info.Config.Env.find((e) => e.startsWith('QUARRY_CONTROL_KEY='))?.slice('QUARRY_CONTROL_KEY='.length);
    const wired = /\.(categorize|crawl|index|web)\.\d$/.test(info.Name);
    t.is(key !== undefined, wired, `${info.Name}: a key only in a wired unit's env`);
    if (key === undefined) continue;
    keys.add(key);
    t.false(JSON.stringify(info.Config.Labels ?? {}).includes(key), `${info.Name}: the key is in no label`);
    t.false(JSON.stringify([info.Path, info.Args, info.Config.Cmd, info.Config.Entrypoint]).includes(key), `${info.Name}: nor in its arguments`);
  }
  t.is(keys.size, 1, 'one key for the run');

  run.child.kill('SIGINT');
  t.is(await run.exited, 0, run.stderr());
  t.deepEqual(await leftovers(), [], 'no container of the stack is left');
  t.deepEqual((await docker.listNetworks({ filters: { name: [networkName(name)] } })).filter((n) => n.Name === networkName(name)), [], 'its network is gone');
});

test('a broken stack: every fault as FILE:LINE:COL, exit 1, nothing started', async (t) => {
  const name = `dsb${process.pid}`;
  const { dir, home } = exampleCopy(t, name);
  const { writeFileSync, readFileSync } = await import('node:fs');
  const yml = join(dir, 'quarry.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace('port: 8080', 'port: http'));
  const old = process.env.QUARRY_HOME;
  process.env.QUARRY_HOME = home;
  t.teardown(() => { if (old === undefined) delete process.env.QUARRY_HOME; else process.env.QUARRY_HOME = old; });
  const { code, stderr } = await quarry(['run', dir, '--processes']);
  t.is(code, 1);
  t.regex(stderr, new RegExp(`^${dir}/quarry\\.yml:\\d+:\\d+: node 'web': 'port' must be a whole number`, 'm'));
  t.false(existsSync(join(home, 'run')), 'nothing was recorded');
});
