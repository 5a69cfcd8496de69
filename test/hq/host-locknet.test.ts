// locknet on HQ's own host (`"locknet": true` in HQ's config): the real `quarry hq` in a network
// namespace the test makes (as if it were a machine), a member and a stranger beside it. HQ's
// own etcd, router, API and git port run inside; the docker engine is reached by its socket.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { REPO } from '../house/import-graph.js';
import { Lan } from '../support/netns.js';
import { until } from '../support/until.js';

interface Info { apiPort: number; sshPort: number; routerPort: number }

test('HQ with "locknet": true lets anyone reach SSH and its own ports, members everything else, and its rules outlive it', async (t) => {
  const lan = await Lan.make('qhl');
  const dir = mkdtempSync(join(tmpdir(), 'quarry-host-locknet-'));
  t.teardown(async () => {
    await lan.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const hqHost = await lan.host('hq', 1);
  const member = await lan.host('member', 2);
  const stranger = await lan.host('stranger', 3);
  await lan.listen(hqHost.ns, 22);
  await lan.listen(hqHost.ns, 5999);
  t.is(await lan.reach(stranger.ns, hqHost.ip, 5999), 'open', 'before HQ: nothing is closed');

  const home = join(dir, 'home');
  const config = join(dir, 'hq.json');
  writeFileSync(config, JSON.stringify({ home, host: '0.0.0.0', sshPort: 0, apiHost: '0.0.0.0', apiPort: 0, routerPort: 0, etcdPort: 0, locknet: true }));
  const hq = lan.spawn(hqHost.ns, process.execPath, ['--import', 'tsx', join(REPO, 'cli/main.ts'), 'hq', '--config', config], { cwd: REPO });
  let output = '';
  hq.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
  hq.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
  const info = await until('HQ up', async () => JSON.parse(readFileSync(join(home, 'hq.json'), 'utf8')) as Info);
  await until('locknet in force', async () => (/locknet: in force/.test(output) ? true : undefined));
  t.regex(output, /locknet: in force: 0 members \(none\), public tcp 22,/);

  for (const port of [22, info.sshPort, info.apiPort, info.routerPort]) {
    t.is(await lan.reach(stranger.ns, hqHost.ip, port), 'open', `port ${port} is public on HQ's host`);
  }
  t.is(await lan.reach(stranger.ns, hqHost.ip, 5999), 'dropped', 'anything else is closed to a stranger');
  t.is(await lan.reach(member.ns, hqHost.ip, 5999), 'dropped', 'and to the member, until it is one');

  // The member joins: HQ's own host follows /quarry/network/hosts/ as every agent does.
  const etcdUrl = /own etcd on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)![1]!;
  await lan.exec(hqHost.ns, 'etcdctl', ['--endpoints', etcdUrl, 'put', '/quarry/network/hosts/m1', JSON.stringify({ id: 'm1', ip: member.ip })]);
  await until('the member let in', async () => ((await lan.reach(member.ns, hqHost.ip, 5999)) === 'open' ? true : undefined), 10_000);
  t.is(await lan.reach(stranger.ns, hqHost.ip, 5999), 'dropped');

  // HQ killed outright: the rules stay in force (fail closed).
  hq.kill('SIGKILL');
  await new Promise((r) => hq.once('exit', r));
  t.is(await lan.reach(stranger.ns, hqHost.ip, 5999), 'dropped', 'still closed with HQ gone');
  t.is(await lan.reach(member.ns, hqHost.ip, 5999), 'open');
  const shown = JSON.parse(await lan.exec(hqHost.ns, process.execPath, ['--import', 'tsx', join(REPO, 'cli/main.ts'), 'locknet', 'show', '--json'])) as { on: boolean; members: { v4: string[] } };
  t.true(shown.on);
  t.deepEqual(shown.members.v4, [member.ip]);
});
