// /etc/hosts's quarry block: a table of (file, block) → file, pure; then the in-place write on
// a real file (its inode kept, as a bind-mounted /etc/hosts needs) under the shared lock.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HOSTS_BEGIN, HOSTS_END, withHostsBlock, writeHostsBlock } from '../../launcher/agent/hosts-file.js';

const docker = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n172.30.0.2\ts1\n';
const block = '172.30.0.1 hq\n172.30.0.2 s1\n';
const ours = `${HOSTS_BEGIN}\n172.30.0.1 hq\n172.30.0.2 s1\n${HOSTS_END}\n`;

const cases: { name: string; current: string; block: string; after: string }[] = [
  { name: 'appended to a file without one', current: docker, block, after: docker + ours },
  { name: 'a file without a last newline', current: docker.trimEnd(), block, after: docker + ours },
  { name: 'an empty file', current: '', block, after: ours },
  { name: 'replaced where it stood, lines after it kept', current: `${docker}${HOSTS_BEGIN}\n10.0.0.9 old\n${HOSTS_END}\n# mine\n`, block, after: `${docker}${ours}# mine\n` },
  { name: 'the same block: nothing changes', current: docker + ours, block, after: docker + ours },
  { name: 'an empty block removes it, markers and all', current: docker + ours, block: '', after: docker },
  { name: 'an empty block on a file without one', current: docker, block: '', after: docker },
  { name: 'a block cut short (no end marker) is replaced to the end', current: `${docker}${HOSTS_BEGIN}\n10.0.0.9 old\n`, block, after: docker + ours },
  { name: 'blank lines in the block are dropped', current: '', block: '\n10.0.0.1 hq\n\n', after: `${HOSTS_BEGIN}\n10.0.0.1 hq\n${HOSTS_END}\n` },
];

for (const c of cases) {
  test(`withHostsBlock: ${c.name}`, (t) => {
    t.is(withHostsBlock(c.current, c.block), c.after);
  });
}

test('writeHostsBlock: rewrites the file in place (same inode), shorter or longer, and says whether it changed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-hosts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'hosts');
  writeFileSync(path, docker);
  const inode = statSync(path).ino;
  t.true(await writeHostsBlock(path, block, join(dir, 'state')));
  t.is(readFileSync(path, 'utf8'), docker + ours);
  t.false(await writeHostsBlock(path, block, join(dir, 'state')), 'the same block again: unchanged');
  t.true(await writeHostsBlock(path, '10.0.0.1 hq\n', join(dir, 'state')));
  t.is(readFileSync(path, 'utf8'), `${docker}${HOSTS_BEGIN}\n10.0.0.1 hq\n${HOSTS_END}\n`, 'a shorter file is cut to its length');
  t.true(await writeHostsBlock(path, '', join(dir, 'state')));
  t.is(readFileSync(path, 'utf8'), docker);
  t.is(statSync(path).ino, inode, 'never replaced: a bind mount stays in place');
});

test('writeHostsBlock: writers on one machine take turns; a lock left by a dead writer is taken over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-hosts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'hosts');
  writeFileSync(path, docker);
  const blocks = Array.from({ length: 8 }, (_, i) => `10.0.0.${i + 1} s${i + 1}\n`);
  await Promise.all(blocks.map((b) => writeHostsBlock(path, b, join(dir, 'state'))));
  const text = readFileSync(path, 'utf8');
  t.is(text.split(HOSTS_BEGIN).length, 2, 'one block, whichever writer came last');
  t.true(blocks.some((b) => text === `${docker}${HOSTS_BEGIN}\n${b}${HOSTS_END}\n`), text);

  // A stale lock (its holder died 11 s ago) does not block the next writer for good.
  const lock = join(dir, 'state', 'hosts.lock');
  mkdirSync(lock, { recursive: true });
  const old = new Date(Date.now() - 11_000);
  utimesSync(lock, old, old);
  t.true(await writeHostsBlock(path, '10.0.0.99 late\n', join(dir, 'state')));
  t.regex(readFileSync(path, 'utf8'), /10\.0\.0\.99 late/);
});
