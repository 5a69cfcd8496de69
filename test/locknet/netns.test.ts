// locknet's applier in network namespaces this file makes: a switch (a bridge in a namespace
// of its own), a server, a member and a stranger on it; the server runs `quarry locknet …` and
// the others probe it. Later a "container" behind a Docker-like bridge in the server's
// namespace, published with DNAT, checks the forward path (DOCKER-USER) without Docker.
// Needs root and ipset: without them the tests fail, saying so.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));

const tag = `qlk${process.pid}`;
const NS = { sw: `${tag}-sw`, srv: `${tag}-srv`, mem: `${tag}-mem`, str: `${tag}-str`, ctr: `${tag}-ctr` };
const x = randomInt(0, 256);
const y = randomInt(1, 0xffff).toString(16);
const SUBNET = `10.213.${x}`;
const IP = { srv: `${SUBNET}.1`, mem: `${SUBNET}.2`, str: `${SUBNET}.3` };
const IP6 = { srv: `fd13:${y}::1`, mem: `fd13:${y}::2`, str: `fd13:${y}::3` };
const CTR_NET = `172.30.${x}`;
const CTR = `${CTR_NET}.2`;

const children: ChildProcess[] = [];
let dir = '';
let ipBin = 'ip';
/** The host's state before quarry's first apply (someone else's rules and set included). */
let baseline = '';

async function sh(file: string, args: string[]): Promise<string> {
  try {
    return (await run(file, args, { maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}
const inNs = (ns: string, file: string, args: string[]) => sh('ip', ['netns', 'exec', ns, file, ...args]);

/** `quarry locknet …` run in the server's namespace, as a person (or the agent) would. */
function quarry(args: string[], stdin?: string, env?: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // `ip` found on this process's PATH: `env` may name one without it (a host missing a tool).
    const child = spawn(ipBin, ['netns', 'exec', NS.srv, process.execPath, '--import', 'tsx', 'cli/main.ts', 'locknet', ...args], { cwd: REPO, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

async function apply(file: string, ...more: string[]): Promise<string> {
  const r = await quarry(['apply', '--members', file, ...more]);
  if (r.code !== 0) throw new Error(`quarry locknet apply --members ${file} ${more.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function membersFile(name: string, records: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof records === 'string' ? records : JSON.stringify(records, null, 2));
  return path;
}

/** A TCP listener, in a namespace, on each of `ports` (IPv4 and IPv6). */
async function listen(ns: string, ports: number[]): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', `
const net = require('node:net');
const ports = process.argv.slice(1).map(Number);
let up = 0;
for (const port of ports) net.createServer((s) => { s.on('error', () => {}); s.end(); })
  .listen({ port, host: '::' }, () => { if (++up === ports.length) console.log('up'); });`, ...ports.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`listener on ${ports.join(',')} in ${ns} exited ${code}`)));
  });
}

type Reach = 'open' | 'refused' | 'dropped';
/** What TCP connections from a namespace to each `host port` found (all tried at once; 1 s each). */
async function reach(ns: string, targets: Array<[host: string, port: number]>): Promise<Reach[]> {
  const out = await inNs(ns, process.execPath, ['-e', `
const net = require('node:net');
const targets = JSON.parse(process.argv[1]);
Promise.all(targets.map(([host, port]) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  const done = (what) => { clearTimeout(timer); s.destroy(); resolve(what); };
  const timer = setTimeout(() => done('dropped'), 1000);
  s.once('connect', () => done('open'));
  s.once('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'dropped'));
}))).then((r) => console.log(JSON.stringify(r)));`, JSON.stringify(targets)]);
  return JSON.parse(out) as Reach[];
}

/** From the member and the stranger, ports 22 and 5000 of the server over IPv4 and IPv6. */
async function reachServer(): Promise<Record<'mem' | 'str', Record<string, Reach>>> {
  const targets: Array<[string, number]> = [[IP.srv, 22], [IP.srv, 5000], [IP6.srv, 22], [IP6.srv, 5000]];
  const keys = ['v4:22', 'v4:5000', 'v6:22', 'v6:5000'];
  const [mem, str] = await Promise.all([reach(NS.mem, targets), reach(NS.str, targets)]);
  const named = (r: Reach[]) => Object.fromEntries(keys.map((k, i) => [k, r[i]!]));
  return { mem: named(mem), str: named(str) };
}
const ALL_OPEN = { 'v4:22': 'open', 'v4:5000': 'open', 'v6:22': 'open', 'v6:5000': 'open' };
const SSH_ONLY = { 'v4:22': 'open', 'v4:5000': 'dropped', 'v6:22': 'open', 'v6:5000': 'dropped' };

/** The server's firewall as the kernel holds it: iptables, ip6tables (every table) and ipset, as saved. */
async function saved(): Promise<{ v4: string; v6: string; ipset: string }> {
  const strip = (text: string) => text.split('\n').filter((l) => !l.startsWith('#')).join('\n').replace(/\[\d+:\d+\]/g, '[0:0]');
  const [v4, v6, ipset] = await Promise.all([
    inNs(NS.srv, 'iptables-save', []), inNs(NS.srv, 'ip6tables-save', []), inNs(NS.srv, 'ipset', ['save']),
  ]);
  return { v4: strip(v4), v6: strip(v6), ipset };
}
/**
 * The same, comparable across applies: each apply swaps in a freshly built set, whose hash seed
 * (`initval`) and so whose listing order are its own.
 */
async function state(): Promise<string> {
  const s = await saved();
  const ipset = s.ipset.split('\n').map((l) => l.replace(/ initval 0x[0-9a-f]+/, '')).filter(Boolean).sort().join('\n');
  return `${s.v4}\n${s.v6}\n${ipset}\n`;
}

test.before(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('test/locknet/netns.test.ts makes network namespaces and firewalls in them: it must run as root');
  }
  await sh('ipset', ['--version']).catch((err: Error) => {
    throw new Error(`test/locknet/netns.test.ts needs the ipset binary (Debian: apt-get install ipset): ${err.message}`);
  });
  for (const tool of ['iptables-save', 'ip6tables-save', 'iptables-restore', 'ip6tables-restore']) {
    await sh('which', [tool]).catch(() => { throw new Error(`test/locknet/netns.test.ts needs ${tool} (Debian: apt-get install iptables)`); });
  }
  dir = await mkdtemp(join(tmpdir(), 'quarry-locknet-'));
  ipBin = (await sh('which', ['ip'])).trim();

  await sh('ip', ['netns', 'add', NS.sw]);
  await sh('ip', ['-n', NS.sw, 'link', 'add', 'br0', 'type', 'bridge']);
  await sh('ip', ['-n', NS.sw, 'link', 'set', 'br0', 'up']);
  for (const host of ['srv', 'mem', 'str'] as const) {
    const ns = NS[host];
    await sh('ip', ['netns', 'add', ns]);
    await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await sh('ip', ['-n', NS.sw, 'link', 'add', `v-${host}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await sh('ip', ['-n', NS.sw, 'link', 'set', `v-${host}`, 'master', 'br0', 'up']);
    await sh('ip', ['-n', ns, 'addr', 'add', `${IP[host]}/24`, 'dev', 'eth0']);
    await sh('ip', ['-n', ns, 'addr', 'add', `${IP6[host]}/64`, 'dev', 'eth0', 'nodad']);
    await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }
  await listen(NS.srv, [22, 5000]);

  // Someone else's firewall on the server: a chain of theirs, a rule in INPUT, a rule in nat, a set.
  await inNs(NS.srv, 'iptables', ['-N', 'OTHER']);
  await inNs(NS.srv, 'iptables', ['-A', 'OTHER', '-p', 'tcp', '--dport', '9', '-j', 'DROP']);
  await inNs(NS.srv, 'iptables', ['-A', 'INPUT', '-s', '192.0.2.1', '-j', 'OTHER']);
  await inNs(NS.srv, 'ip6tables', ['-A', 'INPUT', '-s', '2001:db8::9', '-j', 'DROP']);
  await inNs(NS.srv, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '198.51.100.0/24', '-j', 'MASQUERADE']);
  await inNs(NS.srv, 'ipset', ['create', 'other-set', 'hash:ip']);
  await inNs(NS.srv, 'ipset', ['add', 'other-set', '192.0.2.7']);
  baseline = await state();
});

test.after.always(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  for (const ns of Object.values(NS)) await sh('ip', ['netns', 'del', ns]).catch(() => '');
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

const servers = () => [{ id: 'srv', ip: IP.srv }, { id: 'mem', ip: IP.mem }, { id: 'mem', ip: IP6.mem, role: 'v6' }];

test.serial('before any apply, the stranger reaches every port (the probes work)', async (t) => {
  const r = await reachServer();
  t.deepEqual(r.str, ALL_OPEN);
  t.deepEqual(r.mem, ALL_OPEN);
  t.deepEqual(await reach(NS.str, [[IP.srv, 5001]]), ['refused']);
});

test.serial('after apply a stranger reaches port 22 only, a member every port', async (t) => {
  const out = await apply(await membersFile('members.json', servers()));
  t.is(out, 'locknet: in force: 3 members (2 IPv4, 1 IPv6), public tcp 22, no docker (inbound rules only)\n');
  const r = await reachServer();
  t.deepEqual(r.str, SSH_ONLY);
  t.deepEqual(r.mem, ALL_OPEN);
});

test.serial('show --json says what was applied', async (t) => {
  const r = await quarry(['show', '--json']);
  t.is(r.code, 0, r.stderr);
  const shown = JSON.parse(r.stdout) as { members: { v4: string[]; v6: string[] } };
  shown.members.v4.sort();
  t.deepEqual(shown, {
    on: true,
    members: { v4: [IP.srv, IP.mem].sort(), v6: [IP6.mem] },
    public: [22],
    hooks: { v4: { input: true, dockerUser: null }, v6: { input: true, dockerUser: null } },
  });
  const text = await quarry(['show']);
  t.regex(text.stdout, /^locknet: 3 members \(2 IPv4, 1 IPv6\), public tcp 22, no docker/);
});

test.serial('applying the same members twice changes nothing: same rules, same sets, one hook', async (t) => {
  const file = join(dir, 'members.json');
  const first = await state();
  await apply(file);
  const second = await state();
  t.is(second, first);
  await apply(file);
  t.is(await state(), first);
  // Not even rewritten the same: the rules' packet counters (reset by a rewrite) still hold the probes' packets.
  const counted = (await inNs(NS.srv, 'iptables-save', ['-c', '-t', 'filter'])).split('\n').find((l) => l.includes('--match-set quarry-members4'));
  t.regex(counted ?? '', /^\[[1-9]\d*:\d+\] -A QUARRY-INPUT /, 'the member rule\'s counters survived the second apply');
  const input = (await inNs(NS.srv, 'iptables-save', ['-t', 'filter'])).split('\n').filter((l) => l.startsWith('-A INPUT'));
  t.is(input.filter((l) => l.includes('-j QUARRY-INPUT')).length, 1);
  t.regex(input[0]!, /-j QUARRY-INPUT$/, 'the hook is INPUT\'s first rule');
});

test.serial('a join lets the stranger in, a leave shuts it out again', async (t) => {
  await apply(await membersFile('join.json', [...servers(), { id: 'str', ip: IP.str }, { id: 'str', ip: IP6.str }]));
  t.deepEqual((await reachServer()).str, ALL_OPEN);
  const out = await apply(join(dir, 'members.json'));
  t.regex(out, /^locknet: in force: 3 members/);
  const r = await reachServer();
  t.deepEqual(r.str, SSH_ONLY);
  t.deepEqual(r.mem, ALL_OPEN);
});

test.serial('every bad input exits 1 with a message naming the file, entry and value, and changes nothing', async (t) => {
  const before = await saved();
  const cases: Array<[args: string[], message: string, stdin?: string]> = [
    [['--members', await membersFile('bad-json.json', '[{"id": "a", "ip": "10.0.0.1"}')], 'bad-json.json: not JSON'],
    [['--members', await membersFile('no-ip.json', [{ id: 'srv', ip: IP.srv }, { id: 'mem' }])], 'no-ip.json: entry 1 (id "mem"): has no "ip"'],
    [['--members', await membersFile('bad-ip.json', [{ id: 'srv', ip: IP.srv }, { id: 'x', ip: '10.0.0.300' }])], 'bad-ip.json: entry 1 (id "x"): "ip" is "10.0.0.300", not an IPv4 or IPv6 address'],
    [['--members', await membersFile('cidr.json', [{ id: 'lan', ip: '10.0.0.0/8' }])], 'cidr.json: entry 0 (id "lan"): "ip" is "10.0.0.0/8", not an IPv4 or IPv6 address'],
    [['--members', await membersFile('not-array.json', { id: 'srv', ip: IP.srv })], 'not-array.json: expected a JSON array of server records {"id": …, "ip": …}, got an object'],
    [['--members', '-'], 'stdin: entry 0 (id "h"): "ip" is "db.example.com", not an IPv4 or IPv6 address', '[{"id": "h", "ip": "db.example.com"}]'],
    [['--members', join(dir, 'members.json'), '--public', '22,http'], '--public: entry 1 is "http", not a TCP port (1 to 65535)'],
    [['--members', join(dir, 'members.json'), '--public', ''], '--public: entry 0 is "", not a TCP port (1 to 65535)'],
    [['--members', join(dir, 'missing.json')], 'missing.json: cannot read it (ENOENT)'],
  ];
  const results = await Promise.all(cases.map(([args, , stdin]) => quarry(['apply', ...args], stdin)));
  results.forEach((r, i) => {
    const [args, message] = cases[i]!;
    t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    t.true(r.stderr.includes(message), `${args.join(' ')}: expected "${message}" in: ${r.stderr}`);
    t.is(r.stdout, '');
  });
  t.deepEqual(await saved(), before, 'iptables-save, ip6tables-save and ipset save are byte for byte what they were');
  t.deepEqual((await reachServer()).str, SSH_ONLY, 'the rules in force still hold');
});

test.serial('a rule set that cannot be put in force leaves the last good one (fail closed), with the tool\'s words', async (t) => {
  // Binaries as on a broken host: iptables-restore and ip6tables-restore that refuse; then no ipset at all.
  const bin = join(dir, 'bin');
  const noIpset = join(dir, 'no-ipset');
  await mkdir(bin);
  await mkdir(noIpset);
  for (const tool of ['iptables-save', 'ip6tables-save', 'iptables-restore', 'ip6tables-restore', 'ipset']) {
    const real = (await sh('which', [tool])).trim();
    if (tool.endsWith('-restore')) await writeFile(join(bin, tool), `#!/bin/sh\necho "${tool}: line 2 refused by the test" >&2\nexit 1\n`, { mode: 0o755 });
    else await symlink(real, join(bin, tool));
    if (tool !== 'ipset') await symlink(real, join(noIpset, tool));
  }
  const before = await state();
  const refused = await quarry(['apply', '--members', join(dir, 'members.json'), '--public', '22,5000'], undefined, { ...process.env, PATH: bin });
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr, /ip6?tables-restore --noflush failed \(exit 1\): ip6?tables-restore: line 2 refused by the test/);
  t.is(await state(), before, 'the rules and members in force are those of the last apply');
  t.deepEqual((await reachServer()).str, SSH_ONLY, 'port 5000 is still closed to the stranger');

  const missing = await quarry(['apply', '--members', join(dir, 'members.json')], undefined, { ...process.env, PATH: noIpset });
  t.is(missing.code, 1, missing.stderr);
  t.is(missing.stderr, 'locknet needs ipset, which is not installed here (Debian: apt-get install ipset)\n');
  t.is(await state(), before);
});

test.serial('someone else\'s rules and set survive apply and flush; flush takes away exactly quarry\'s', async (t) => {
  const filter = await inNs(NS.srv, 'iptables-save', ['-t', 'filter']);
  t.regex(filter, /^:OTHER /m);
  t.regex(filter, /^-A OTHER -p tcp -m tcp --dport 9 -j DROP$/m);
  t.regex(filter, /^-A INPUT -s 192\.0\.2\.1\/32 -j OTHER$/m);
  t.regex(await inNs(NS.srv, 'ip6tables-save', ['-t', 'filter']), /^-A INPUT -s 2001:db8::9\/128 -j DROP$/m);
  t.regex(await inNs(NS.srv, 'ipset', ['save', 'other-set']), /^add other-set 192\.0\.2\.7$/m);

  const flushed = await quarry(['flush']);
  t.is(flushed.code, 0, flushed.stderr);
  t.is(flushed.stdout, 'locknet: quarry\'s rules and sets removed; nothing else was touched\n');
  t.is(await state(), baseline, 'after flush the host is as it was before quarry: others\' rules and set in place');
  const all = await saved();
  t.false(/QUARRY|quarry/.test(all.v4 + all.v6 + all.ipset));
  t.deepEqual((await reachServer()).str, ALL_OPEN);

  const again = await quarry(['flush']);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, 'locknet: nothing of quarry\'s was in force\n');
  t.deepEqual(await saved(), all, 'a second flush is a no-op');

  const shown = await quarry(['show', '--json']);
  t.like(JSON.parse(shown.stdout), { on: false, members: { v4: [], v6: [] }, public: [] });
});

test.serial('forwarded traffic to a published container port: members in, strangers out, the container\'s egress untouched', async (t) => {
  // Docker, without Docker: a DOCKER-USER chain hooked from FORWARD, a container on a br-* bridge
  // in the server's namespace, its port 6000 published on the server's 16000 with DNAT.
  await sh('ip', ['netns', 'add', NS.ctr]);
  await sh('ip', ['-n', NS.ctr, 'link', 'set', 'lo', 'up']);
  await sh('ip', ['-n', NS.srv, 'link', 'add', 'br-qtest', 'type', 'bridge']);
  await sh('ip', ['-n', NS.srv, 'addr', 'add', `${CTR_NET}.1/24`, 'dev', 'br-qtest']);
  await sh('ip', ['-n', NS.srv, 'link', 'set', 'br-qtest', 'up']);
  await sh('ip', ['-n', NS.srv, 'link', 'add', 'v-ctr', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.ctr]);
  await sh('ip', ['-n', NS.srv, 'link', 'set', 'v-ctr', 'master', 'br-qtest', 'up']);
  await sh('ip', ['-n', NS.ctr, 'addr', 'add', `${CTR}/24`, 'dev', 'eth0']);
  await sh('ip', ['-n', NS.ctr, 'link', 'set', 'eth0', 'up']);
  await sh('ip', ['-n', NS.ctr, 'route', 'add', 'default', 'via', `${CTR_NET}.1`]);
  await inNs(NS.srv, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await inNs(NS.srv, 'iptables', ['-N', 'DOCKER-USER']);
  await inNs(NS.srv, 'iptables', ['-A', 'FORWARD', '-j', 'DOCKER-USER']);
  await inNs(NS.srv, 'iptables', ['-A', 'DOCKER-USER', '-j', 'RETURN']);
  await inNs(NS.srv, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '16000', '-j', 'DNAT', '--to-destination', `${CTR}:6000`]);
  await inNs(NS.srv, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', `${CTR_NET}.0/24`, '!', '-o', 'br-qtest', '-j', 'MASQUERADE']);
  await listen(NS.ctr, [6000]);
  await listen(NS.mem, [7000]);

  t.deepEqual(await reach(NS.str, [[IP.srv, 16000]]), ['open'], 'without locknet the published port is open to anyone');
  t.deepEqual(await reach(NS.ctr, [[IP.mem, 7000]]), ['open']);

  const out = await apply(join(dir, 'members.json'));
  t.is(out, 'locknet: in force: 3 members (2 IPv4, 1 IPv6), public tcp 22, docker-user hooked\n');
  const [str, mem, ctr] = await Promise.all([
    reach(NS.str, [[IP.srv, 16000], [IP.srv, 22], [IP.srv, 5000]]),
    reach(NS.mem, [[IP.srv, 16000], [IP.srv, 5000]]),
    reach(NS.ctr, [[IP.mem, 7000], [IP.str, 22]]),
  ]);
  t.deepEqual(str, ['dropped', 'open', 'dropped'], 'the stranger: not the published port, not 5000, only 22');
  t.deepEqual(mem, ['open', 'open'], 'the member: the published port and the host');
  // Out to the member's listener, and to the stranger (nothing listens there: its refusal came back).
  t.deepEqual(ctr, ['open', 'refused'], 'the container still opens connections out, to members and others');

  const filter = await inNs(NS.srv, 'iptables-save', ['-t', 'filter']);
  const dockerUser = filter.split('\n').filter((l) => l.startsWith('-A DOCKER-USER'));
  t.deepEqual(dockerUser, ['-A DOCKER-USER -m comment --comment "quarry locknet" -j QUARRY-FORWARD', '-A DOCKER-USER -j RETURN']);
  t.regex(filter, /^-A FORWARD -j DOCKER-USER$/m);
  const shown = JSON.parse((await quarry(['show', '--json'])).stdout) as { hooks: unknown };
  t.deepEqual(shown.hooks, { v4: { input: true, dockerUser: true }, v6: { input: true, dockerUser: null } });

  // Applied again: the same; flushed: DOCKER-USER as Docker left it.
  const applied = await state();
  await apply(join(dir, 'members.json'));
  t.is(await state(), applied);
  t.is((await quarry(['flush'])).code, 0);
  const after = (await inNs(NS.srv, 'iptables-save', ['-t', 'filter'])).split('\n');
  t.deepEqual(after.filter((l) => l.startsWith('-A DOCKER-USER') || l.startsWith('-A FORWARD')), ['-A FORWARD -j DOCKER-USER', '-A DOCKER-USER -j RETURN']);
  t.false(after.some((l) => l.includes('QUARRY')));
  t.deepEqual(await reach(NS.str, [[IP.srv, 16000]]), ['open']);
});
