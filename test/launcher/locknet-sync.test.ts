// The membership a host's firewall follows: a real etcd, and a recording applier in place of
// locknet's (a fake: the rules themselves are tested in test/locknet/ and on the grid in
// test/hq/grid.test.ts). What is checked is what gets applied, when, and what does not.
import test from 'ava';
import { startLocknetSync, memberOf, type LocknetState } from '../../launcher/index.js';
import type { NetworkHost } from '../../plan/index.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';

let etcd: TestEtcd;
test.before(async () => { etcd = await startEtcd(); });
test.after.always(async () => { await etcd?.stop(); });

const PREFIX = '/quarry/network/hosts/';
const put = (id: string, ip: string) => etcd.client.put(`${PREFIX}${id}`).value(JSON.stringify({ id, ip }));

async function until<T>(what: string, check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.serial('follows the prefix: the whole membership first, then each join and leave, coalesced, newest last', async (t) => {
  await etcd.client.delete().prefix(PREFIX);
  await put('hq', '10.9.0.1');
  await put('s1', '10.9.0.2');
  const applied: NetworkHost[][] = [];
  const states: LocknetState[] = [];
  const lines: string[] = [];
  const sync = startLocknetSync({
    etcd: etcd.client, publicPorts: [22], log: (l) => lines.push(l), onState: (s) => states.push(s),
    apply: async (members) => { applied.push(members); },
  });
  t.teardown(() => sync.stop());
  await sync.ready;
  t.deepEqual(applied[0], [{ id: 'hq', ip: '10.9.0.1' }, { id: 's1', ip: '10.9.0.2' }]);
  t.like(sync.state(), { state: 'on', members: 2, public: [22] });

  await put('s2', '10.9.0.3');
  await until('the join applied', () => (applied.at(-1)?.length === 3 ? true : undefined));
  t.deepEqual(applied.at(-1)!.map((m) => m.id), ['hq', 's1', 's2']);

  // Changes that come together are applied together: never more applies than changes, and the last is the newest.
  const before = applied.length;
  await Promise.all([put('s3', '10.9.0.4'), put('s4', '10.9.0.5'), etcd.client.delete().key(`${PREFIX}s1`)]);
  await until('all three applied', () => (applied.at(-1)?.length === 4 && !applied.at(-1)!.some((m) => m.id === 's1') ? true : undefined));
  t.true(applied.length - before <= 3);
  t.deepEqual(applied.at(-1)!.map((m) => m.id), ['hq', 's2', 's3', 's4']);
  t.true(states.every((s) => s.state === 'on'));
  t.true(lines.some((l) => /locknet: in force: 2 members \(hq, s1\), public tcp 22/.test(l)), lines.join('\n'));
});

test.serial('a membership that cannot be applied leaves the one in force (fail closed), says so once, and is tried again', async (t) => {
  await etcd.client.delete().prefix(PREFIX);
  await put('hq', '10.9.0.1');
  const applied: string[][] = [];
  const lines: string[] = [];
  let broken = false;
  const sync = startLocknetSync({
    etcd: etcd.client, publicPorts: [22], log: (l) => lines.push(l),
    apply: async (members) => {
      if (broken) throw new Error('iptables-restore: line 3 failed');
      applied.push(members.map((m) => m.id));
    },
  });
  t.teardown(() => sync.stop());
  await sync.ready;

  // A bad record: nothing is applied, the state says failed, the rules in force stay.
  await etcd.client.put(`${PREFIX}evil`).value('{"id":"evil","ip":"0.0.0.0/0"}');
  await until('failed', () => (sync.state().state === 'failed' ? true : undefined));
  t.deepEqual(applied, [['hq']]);
  t.regex(sync.state().error!, /evil: "ip" is "0\.0\.0\.0\/0", not an IPv4 or IPv6 address/);
  await etcd.client.delete().key(`${PREFIX}evil`);
  await until('on again', () => (sync.state().state === 'on' ? true : undefined));

  // The tools failing: tried again until they work, one line said.
  broken = true;
  await put('s1', '10.9.0.2');
  await until('failed', () => (sync.state().state === 'failed' ? true : undefined));
  await new Promise((r) => setTimeout(r, 1200));
  broken = false;
  await until('applied after the retry', () => (applied.at(-1)?.includes('s1') ? true : undefined));
  t.is(lines.filter((l) => /cannot apply the membership \(iptables-restore/.test(l)).length, 1, lines.join('\n'));
});

test('memberOf: a record is an address under its id, or the reason it is not', (t) => {
  t.deepEqual(memberOf(`${PREFIX}s1`, '{"id":"s1","ip":"fd00::2"}'), { id: 's1', ip: 'fd00::2' });
  t.is(memberOf(`${PREFIX}s1`, 'nope'), `${PREFIX}s1: not JSON`);
  t.is(memberOf(`${PREFIX}s1`, '{"id":"s1"}'), `${PREFIX}s1: "ip" is undefined, not an IPv4 or IPv6 address`);
  t.is(memberOf(`${PREFIX}s1`, '{"ip":"box.example"}'), `${PREFIX}s1: "ip" is "box.example", not an IPv4 or IPv6 address`);
});

test.serial('the membership in force is put in force again now and then (rules someone removed come back), without a word', async (t) => {
  await etcd.client.delete().prefix(PREFIX);
  await put('hq', '10.9.0.1');
  let applies = 0;
  const lines: string[] = [];
  const sync = startLocknetSync({
    etcd: etcd.client, publicPorts: [22], log: (l) => lines.push(l), reapplyEveryMs: 100,
    apply: async () => { applies += 1; },
  });
  t.teardown(() => sync.stop());
  await sync.ready;
  await until('applied again', () => (applies >= 3 ? true : undefined));
  t.is(lines.filter((l) => l.startsWith('locknet:')).length, 1, lines.join('\n'));
  t.is(sync.state().state, 'on');
});
