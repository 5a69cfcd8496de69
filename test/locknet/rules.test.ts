import test from 'ava';
import {
  CHAINS, LocknetInputError, SETS, flushScript, ipsetScript, parseMembers, parsePorts, parseTable, restoreScript,
  ruleSet, tableInForce, type RuleSet, type TableState,
} from '../../locknet/index.js';

// ---------------------------------------------------------------------------------------------
// parseMembers
// ---------------------------------------------------------------------------------------------

test('parseMembers reads server records, keeping id and ip and ignoring other keys', (t) => {
  t.deepEqual(parseMembers(JSON.stringify([
    { id: 'hq', ip: '10.0.0.1', role: 'hq' },
    { ip: '2001:db8::7' },
  ]), 'm.json'), [{ id: 'hq', ip: '10.0.0.1' }, { ip: '2001:db8::7' }]);
  t.deepEqual(parseMembers('[]', 'stdin'), []);
});

const badMembers: Array<[title: string, text: string, message: string]> = [
  ['not JSON', '[{"id": "a", "ip": "10.0.0.1"', 'm.json: not JSON ('],
  ['an empty file', ' \n', 'm.json: is empty; expected a JSON array of server records'],
  ['not an array', '{"id": "a", "ip": "10.0.0.1"}', 'm.json: expected a JSON array of server records {"id": …, "ip": …}, got an object'],
  ['a string, not an array', '"10.0.0.1"', 'm.json: expected a JSON array of server records {"id": …, "ip": …}, got string "10.0.0.1"'],
  ['null, not an array', 'null', 'm.json: expected a JSON array of server records {"id": …, "ip": …}, got null'],
  ['an entry that is not an object', '[{"id": "a", "ip": "10.0.0.1"}, "10.0.0.2"]', 'm.json: entry 1: expected a server record {"id": …, "ip": …}, got "10.0.0.2"'],
  ['an entry that is an array', '[["10.0.0.2"]]', 'm.json: entry 0: expected a server record {"id": …, "ip": …}, got ["10.0.0.2"]'],
  ['an entry that is null', '[null]', 'm.json: entry 0: expected a server record {"id": …, "ip": …}, got null'],
  ['an id that is not a string', '[{"id": 7, "ip": "10.0.0.1"}]', 'm.json: entry 0: "id" is 7, not a string'],
  ['a record without ip', '[{"id": "a", "ip": "10.0.0.1"}, {"id": "b"}]', 'm.json: entry 1 (id "b"): has no "ip"'],
  ['a record without ip or id', '[{}]', 'm.json: entry 0: has no "ip"'],
  ['an address out of range', '[{"id": "srv-3", "ip": "10.0.0.300"}]', 'm.json: entry 0 (id "srv-3"): "ip" is "10.0.0.300", not an IPv4 or IPv6 address'],
  ['a CIDR block', '[{"id": "a", "ip": "10.0.0.1"}, {"id": "net", "ip": "10.0.0.0/8"}]', 'm.json: entry 1 (id "net"): "ip" is "10.0.0.0/8", not an IPv4 or IPv6 address'],
  ['a host name', '[{"id": "web", "ip": "web-1.example.com"}]', 'm.json: entry 0 (id "web"): "ip" is "web-1.example.com", not an IPv4 or IPv6 address'],
  ['an ip that is a number', '[{"id": "n", "ip": 167772161}]', 'm.json: entry 0 (id "n"): "ip" is 167772161, not an IPv4 or IPv6 address'],
  ['an IPv6 address with a zone', '[{"id": "z", "ip": "fe80::1%eth0"}]', 'm.json: entry 0 (id "z"): "ip" is "fe80::1%eth0", not an IPv4 or IPv6 address'],
  ['an empty address', '[{"ip": ""}]', 'm.json: entry 0: "ip" is "", not an IPv4 or IPv6 address'],
];

for (const [title, text, message] of badMembers) {
  test(`parseMembers refuses ${title}, naming the file, the entry and the value`, (t) => {
    const err = t.throws(() => parseMembers(text, 'm.json'), { instanceOf: LocknetInputError });
    t.true(err.message.startsWith(message), `got: ${err.message}`);
  });
}

test('parseMembers says where the JSON goes wrong: line and column of the position JSON.parse names, or the end', (t) => {
  const text = '[\n  {"id": "a", "ip": "10.0.0.1"},\n  {"id": "b" "ip": "10.0.0.2"}\n]';
  t.throws(() => parseMembers(text, 'm.json'), { instanceOf: LocknetInputError, message: /^m\.json: not JSON \(.*position 48, line 3 column 14\)/ });
  t.throws(() => parseMembers('[{"id": "a"', 'm.json'), { instanceOf: LocknetInputError, message: /^m\.json: not JSON \(.*line 1 column 12\)/ });
});

test('parseMembers names stdin when the file is -', (t) => {
  t.throws(() => parseMembers('nope', 'stdin'), { instanceOf: LocknetInputError, message: /^stdin: not JSON/ });
});

// ---------------------------------------------------------------------------------------------
// parsePorts
// ---------------------------------------------------------------------------------------------

test('parsePorts reads a comma list of TCP ports', (t) => {
  t.deepEqual(parsePorts('22', '--public'), [22]);
  t.deepEqual(parsePorts('22,80, 443', '--public'), [22, 80, 443]);
  t.deepEqual(parsePorts('1,65535', '--public'), [1, 65535]);
});

const badPorts: Array<[text: string, message: string]> = [
  ['', '--public: entry 0 is "", not a TCP port (1 to 65535)'],
  ['22,', '--public: entry 1 is "", not a TCP port (1 to 65535)'],
  ['0', '--public: entry 0 is "0", not a TCP port (1 to 65535)'],
  ['22,65536', '--public: entry 1 is "65536", not a TCP port (1 to 65535)'],
  ['ssh', '--public: entry 0 is "ssh", not a TCP port (1 to 65535)'],
  ['22,-1', '--public: entry 1 is "-1", not a TCP port (1 to 65535)'],
  ['80-90', '--public: entry 0 is "80-90", not a TCP port (1 to 65535)'],
  ['2.5', '--public: entry 0 is "2.5", not a TCP port (1 to 65535)'],
  ['123456', '--public: entry 0 is "123456", not a TCP port (1 to 65535)'],
];

for (const [text, message] of badPorts) {
  test(`parsePorts refuses ${JSON.stringify(text)}`, (t) => {
    t.throws(() => parsePorts(text, '--public'), { instanceOf: LocknetInputError, message });
  });
}

// ---------------------------------------------------------------------------------------------
// ruleSet
// ---------------------------------------------------------------------------------------------

test('ruleSet splits members by family, sorts them numerically and drops repeats', (t) => {
  const rules = ruleSet([
    { id: 'c', ip: '10.0.0.10' },
    { id: 'a', ip: '10.0.0.9' },
    { id: 'x', ip: '2001:db8::2' },
    { id: 'b', ip: '9.255.0.1' },
    { id: 'a-again', ip: '10.0.0.9' },
    { id: 'y', ip: '2001:DB8:0::1' },
    { id: 'y-again', ip: '2001:db8::1' },
    { id: 'z', ip: '2001:db8::2' },
  ], [443, 22, 80, 22]);
  t.deepEqual(rules, {
    members: { v4: ['9.255.0.1', '10.0.0.9', '10.0.0.10'], v6: ['2001:db8::1', '2001:db8::2'] },
    public: [22, 80, 443],
    docker: true,
  });
});

test('ruleSet of nobody is an empty membership', (t) => {
  t.deepEqual(ruleSet([], [22]), { members: { v4: [], v6: [] }, public: [22], docker: true });
});

// ---------------------------------------------------------------------------------------------
// ipsetScript
// ---------------------------------------------------------------------------------------------

const two: RuleSet = { members: { v4: ['10.0.0.1', '10.0.0.2'], v6: ['2001:db8::1'] }, public: [22], docker: true };

test('ipsetScript on a host without quarry\'s sets makes them, then builds and swaps each in whole', (t) => {
  t.is(ipsetScript(two, new Set()), [
    'create quarry-members4 hash:ip family inet',
    'create quarry-members4-next hash:ip family inet',
    'add quarry-members4-next 10.0.0.1',
    'add quarry-members4-next 10.0.0.2',
    'swap quarry-members4-next quarry-members4',
    'destroy quarry-members4-next',
    'create quarry-members6 hash:ip family inet6',
    'create quarry-members6-next hash:ip family inet6',
    'add quarry-members6-next 2001:db8::1',
    'swap quarry-members6-next quarry-members6',
    'destroy quarry-members6-next',
    '',
  ].join('\n'));
});

test('ipsetScript keeps existing sets (swapped, never destroyed) and clears a -next left over', (t) => {
  const script = ipsetScript(two, new Set(['quarry-members4', 'quarry-members6', 'quarry-members6-next', 'someone-elses']));
  t.is(script, [
    'create quarry-members4-next hash:ip family inet',
    'add quarry-members4-next 10.0.0.1',
    'add quarry-members4-next 10.0.0.2',
    'swap quarry-members4-next quarry-members4',
    'destroy quarry-members4-next',
    'destroy quarry-members6-next',
    'create quarry-members6-next hash:ip family inet6',
    'add quarry-members6-next 2001:db8::1',
    'swap quarry-members6-next quarry-members6',
    'destroy quarry-members6-next',
    '',
  ].join('\n'));
  t.false(/^destroy quarry-members[46]$/m.test(script));
  t.false(script.includes('someone-elses'));
});

test('ipsetScript sizes a large set\'s hash to its members at once (ipset\'s defaults up to 1,024)', (t) => {
  const many = (n: number): RuleSet => ({ ...two, members: { v4: Array.from({ length: n }, (_, i) => `10.1.${i >> 8}.${i & 255}`), v6: [] } });
  const created = (n: number) => ipsetScript(many(n), new Set(Object.values(SETS))).split('\n').filter((l) => l.startsWith('create'));
  t.deepEqual(created(1024), ['create quarry-members4-next hash:ip family inet', 'create quarry-members6-next hash:ip family inet6']);
  t.deepEqual(created(1025), ['create quarry-members4-next hash:ip family inet hashsize 2048 maxelem 65536', 'create quarry-members6-next hash:ip family inet6']);
  t.is(created(40_000)[0], 'create quarry-members4-next hash:ip family inet hashsize 65536 maxelem 131072');
});

test('ipsetScript with no members still swaps in empty sets', (t) => {
  const script = ipsetScript({ members: { v4: [], v6: [] }, public: [22], docker: true }, new Set(Object.values(SETS)));
  t.false(script.includes('add '));
  t.regex(script, /swap quarry-members4-next quarry-members4/);
  t.regex(script, /swap quarry-members6-next quarry-members6/);
});

// ---------------------------------------------------------------------------------------------
// restoreScript
// ---------------------------------------------------------------------------------------------

const emptySave = (family = 'iptables') => `# Generated by ${family}-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
# Completed
`;

const hook = '-m comment --comment "quarry locknet" -j QUARRY-INPUT';
const dockerHook = '-m comment --comment "quarry locknet" -j QUARRY-FORWARD';

function lines(script: string): string[] {
  return script.split('\n');
}

test('restoreScript on a bare host writes quarry\'s input chain and hooks it first in INPUT', (t) => {
  const script = restoreScript('v4', two, parseTable(emptySave()));
  t.is(script, [
    '*filter',
    ':QUARRY-INPUT - [0:0]',
    '-A QUARRY-INPUT -i lo -j RETURN',
    '-A QUARRY-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    '-A QUARRY-INPUT -m set --match-set quarry-members4 src -j RETURN',
    '-A QUARRY-INPUT -i docker0 -j RETURN',
    '-A QUARRY-INPUT -i br-+ -j RETURN',
    '-A QUARRY-INPUT -p tcp -m multiport --dports 22 -m comment --comment "quarry locknet: public" -j RETURN',
    '-A QUARRY-INPUT -p udp -m udp --sport 67 --dport 68 -j RETURN',
    '-A QUARRY-INPUT -j DROP',
    `-I INPUT 1 ${hook}`,
    'COMMIT',
    '',
  ].join('\n'));
  t.false(script.includes('QUARRY-FORWARD'), 'no docker, no forward chain');
  t.false(script.includes('DOCKER-USER'));
});

test('restoreScript makes the hook exactly once: nothing to do when it is already first', (t) => {
  const save = emptySave().replace(':OUTPUT ACCEPT [0:0]\n', `:OUTPUT ACCEPT [0:0]\n:QUARRY-INPUT - [0:0]\n-A INPUT ${hook}\n-A INPUT -s 192.0.2.1 -j ACCEPT\n`);
  const script = restoreScript('v4', two, parseTable(save));
  t.false(lines(script).some((l) => l.startsWith('-I ') || l.startsWith('-D ')), script);
  t.is(lines(script).filter((l) => l.includes('-j QUARRY-INPUT')).length, 0);
});

test('restoreScript moves a hook that is not first to the front', (t) => {
  const save = emptySave().replace(':OUTPUT ACCEPT [0:0]\n', `:OUTPUT ACCEPT [0:0]\n:QUARRY-INPUT - [0:0]\n-A INPUT -s 192.0.2.1 -j ACCEPT\n-A INPUT ${hook}\n`);
  const hooks = lines(restoreScript('v4', two, parseTable(save))).filter((l) => l.includes('-j QUARRY-INPUT'));
  t.deepEqual(hooks, [`-D INPUT ${hook}`, `-I INPUT 1 ${hook}`]);
});

test('restoreScript removes a duplicated hook, leaving one, first', (t) => {
  const save = emptySave().replace(':OUTPUT ACCEPT [0:0]\n', `:OUTPUT ACCEPT [0:0]\n:QUARRY-INPUT - [0:0]\n-A INPUT ${hook}\n-A INPUT -s 192.0.2.1 -j ACCEPT\n-A INPUT ${hook}\n`);
  const hooks = lines(restoreScript('v4', two, parseTable(save))).filter((l) => l.includes('-j QUARRY-INPUT'));
  t.deepEqual(hooks, [`-D INPUT ${hook}`, `-D INPUT ${hook}`, `-I INPUT 1 ${hook}`]);
});

test('restoreScript removes a hook without quarry\'s comment (written by hand) and makes its own', (t) => {
  const save = emptySave().replace(':OUTPUT ACCEPT [0:0]\n', ':OUTPUT ACCEPT [0:0]\n:QUARRY-INPUT - [0:0]\n-A INPUT -s 192.0.2.1 -j ACCEPT\n-A INPUT -j QUARRY-INPUT\n');
  const hooks = lines(restoreScript('v4', two, parseTable(save))).filter((l) => l.includes('-j QUARRY-INPUT'));
  t.deepEqual(hooks, ['-D INPUT -j QUARRY-INPUT', `-I INPUT 1 ${hook}`]);
});

const dockerSave = `*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -j DOCKER
-A DOCKER-USER -j RETURN
COMMIT
`;

test('restoreScript hooks DOCKER-USER, first, only when the chain exists', (t) => {
  const script = restoreScript('v4', two, parseTable(dockerSave));
  const l = lines(script);
  t.true(l.includes(':QUARRY-FORWARD - [0:0]'));
  t.true(l.includes(':QUARRY-CONTAINERS - [0:0]'));
  t.deepEqual(l.filter((x) => x.includes('-j QUARRY-FORWARD')), [`-I DOCKER-USER 1 ${dockerHook}`]);
  t.deepEqual(l.filter((x) => x.startsWith('-A QUARRY-FORWARD')), [
    '-A QUARRY-FORWARD -o docker0 -j QUARRY-CONTAINERS',
    '-A QUARRY-FORWARD -o br-+ -j QUARRY-CONTAINERS',
  ]);
  t.deepEqual(l.filter((x) => x.startsWith('-A QUARRY-CONTAINERS')), [
    '-A QUARRY-CONTAINERS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    '-A QUARRY-CONTAINERS -i docker0 -j RETURN',
    '-A QUARRY-CONTAINERS -i br-+ -j RETURN',
    '-A QUARRY-CONTAINERS -m set --match-set quarry-members4 src -j RETURN',
    '-A QUARRY-CONTAINERS -p tcp -m conntrack --ctorigdstport 22 -j RETURN',
    '-A QUARRY-CONTAINERS -j DROP',
  ]);
  t.false(l.some((x) => x.startsWith('-A FORWARD') || x.startsWith('-I FORWARD')), 'FORWARD itself is not touched');
  t.false(l.some((x) => x.includes('*nat')));
  // Without DOCKER-USER, none of it.
  const bare = restoreScript('v4', two, parseTable(emptySave()));
  for (const chain of [CHAINS.forward, CHAINS.containers, 'DOCKER-USER']) t.false(bare.includes(chain), chain);
});

test('restoreScript leaves a DOCKER-USER hook that is already first alone', (t) => {
  const save = dockerSave.replace('-A DOCKER-USER -j RETURN', `-A DOCKER-USER ${dockerHook}\n-A DOCKER-USER -j RETURN`);
  const l = lines(restoreScript('v4', two, parseTable(save)));
  t.false(l.some((x) => x.startsWith('-I DOCKER-USER') || x.startsWith('-D DOCKER-USER')));
});

test('restoreScript for IPv6 names the v6 set and lets neighbour and router discovery in', (t) => {
  const l = lines(restoreScript('v6', two, parseTable(emptySave('ip6tables'))));
  t.true(l.includes('-A QUARRY-INPUT -m set --match-set quarry-members6 src -j RETURN'));
  t.false(l.some((x) => x.includes('quarry-members4')));
  for (const type of [133, 134, 135, 136]) t.true(l.includes(`-A QUARRY-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j RETURN`), String(type));
  t.true(l.includes('-A QUARRY-INPUT -p udp -m udp --sport 547 --dport 546 -j RETURN'));
  t.false(l.some((x) => x.includes('--sport 67')));
  t.is(l.at(-3), `-I INPUT 1 ${hook}`);
  t.is(l.filter((x) => x.startsWith('-A QUARRY-INPUT')).at(-1), '-A QUARRY-INPUT -j DROP');
});

test('restoreScript writes public ports in rules of at most 15 (multiport\'s limit)', (t) => {
  const ports = Array.from({ length: 32 }, (_, i) => 1000 + i);
  const l = lines(restoreScript('v4', { members: { v4: [], v6: [] }, public: ports, docker: true }, parseTable(emptySave())));
  const multiport = l.filter((x) => x.includes('--dports'));
  t.deepEqual(multiport.map((x) => /--dports (\S+)/.exec(x)![1]!.split(',').length), [15, 15, 2]);
  t.deepEqual(multiport.flatMap((x) => /--dports (\S+)/.exec(x)![1]!.split(',').map(Number)), ports);
  t.deepEqual(tableInForce(parseTable(`*filter\n${l.filter((x) => x.startsWith('-A')).join('\n')}\nCOMMIT\n`)).public, ports);
});

test('restoreScript with no public ports lets members only', (t) => {
  const script = restoreScript('v4', { members: { v4: ['10.0.0.1'], v6: [] }, public: [], docker: true }, parseTable(emptySave()));
  t.false(script.includes('--dports'));
  t.regex(script, /-A QUARRY-INPUT -j DROP/);
});

test('restoreScript never touches another chain\'s rules but its own hooks', (t) => {
  const save = emptySave().replace(':OUTPUT ACCEPT [0:0]\n', ':OUTPUT ACCEPT [0:0]\n:OTHER - [0:0]\n-A INPUT -s 192.0.2.1 -j OTHER\n-A OTHER -p tcp --dport 9 -j DROP\n');
  const l = lines(restoreScript('v4', two, parseTable(save)));
  const touched = l.filter((x) => /^(-[ADIFXR]|:)/.test(x)).filter((x) => !/^(:|-A )QUARRY-/.test(x));
  t.deepEqual(touched, [`-I INPUT 1 ${hook}`]);
});

// ---------------------------------------------------------------------------------------------
// flushScript
// ---------------------------------------------------------------------------------------------

test('flushScript removes the jumps into quarry\'s chains, then empties and deletes them, and nothing else', (t) => {
  const save = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
:OTHER - [0:0]
:QUARRY-CONTAINERS - [0:0]
:QUARRY-FORWARD - [0:0]
:QUARRY-INPUT - [0:0]
-A INPUT ${hook}
-A INPUT -s 192.0.2.1 -j OTHER
-A INPUT -j QUARRY-INPUT
-A FORWARD -j DOCKER-USER
-A DOCKER-USER ${dockerHook}
-A DOCKER-USER -j RETURN
-A OTHER -p tcp -m tcp --dport 9 -j DROP
-A OTHER -j QUARRY-CONTAINERS
-A QUARRY-CONTAINERS -j DROP
-A QUARRY-FORWARD -o docker0 -j QUARRY-CONTAINERS
-A QUARRY-INPUT -j DROP
COMMIT
`;
  t.is(flushScript(parseTable(save)), [
    '*filter',
    `-D INPUT ${hook}`,
    '-D INPUT -j QUARRY-INPUT',
    `-D DOCKER-USER ${dockerHook}`,
    '-D OTHER -j QUARRY-CONTAINERS',
    '-F QUARRY-INPUT',
    '-F QUARRY-FORWARD',
    '-F QUARRY-CONTAINERS',
    '-X QUARRY-INPUT',
    '-X QUARRY-FORWARD',
    '-X QUARRY-CONTAINERS',
    'COMMIT',
    '',
  ].join('\n'));
});

test('flushScript of a table without quarry\'s chains is empty (a second flush is a no-op)', (t) => {
  t.is(flushScript(parseTable(emptySave())), '');
  t.is(flushScript(parseTable(dockerSave)), '');
});

/** The table as iptables-save would print it after `iptables-restore --noflush` of `script` (the lines quarry writes). */
function restored(state: TableState, script: string): TableState {
  const after: TableState = { chains: new Map([...state.chains].map(([c, r]) => [c, [...r]])) };
  for (const line of lines(script)) {
    const [op, chain] = line.split(' ');
    if (line.startsWith(':')) after.chains.set(line.slice(1).split(' ')[0]!, []);
    else if (op === '-A') after.chains.get(chain!)!.push(line);
    else if (op === '-I') after.chains.get(chain!)!.unshift(`-A ${chain}${line.slice(`-I ${chain} 1`.length)}`);
    else if (op === '-D') {
      const rules = after.chains.get(chain!)!;
      rules.splice(rules.indexOf(`-A${line.slice(2)}`), 1);
    } else if (op === '-X') after.chains.delete(chain!);
  }
  return after;
}

test('flushScript after a restore on the same table takes away exactly what the restore added', (t) => {
  const state = parseTable(dockerSave);
  const after = restored(state, restoreScript('v4', two, state));
  t.deepEqual(lines(flushScript(after)).filter((l) => l.startsWith('-D')), [`-D INPUT ${hook}`, `-D DOCKER-USER ${dockerHook}`]);
  t.deepEqual(restored(after, flushScript(after)), state);
});

test('restoreScript is empty when the table already holds exactly these rules and hooks (nothing to write)', (t) => {
  for (const [family, save] of [['v4', dockerSave], ['v6', emptySave('ip6tables')], ['v4', emptySave()]] as const) {
    const after = restored(parseTable(save), restoreScript(family, two, parseTable(save)));
    t.is(restoreScript(family, two, after), '', `${family} ${save.includes('DOCKER-USER') ? 'with' : 'without'} docker`);
    // The members are in the sets, not the rules: other members, the same rules.
    t.is(restoreScript(family, { ...two, members: { v4: ['10.9.9.9'], v6: [] } }, after), '');
    // Other public ports, a rule changed by hand, a hook removed: written again.
    t.not(restoreScript(family, { ...two, public: [22, 80] }, after), '');
    const edited = restored(after, '');
    edited.chains.get('QUARRY-INPUT')!.splice(1, 1);
    t.not(restoreScript(family, two, edited), '');
    const unhooked = restored(after, '');
    unhooked.chains.set('INPUT', []);
    t.deepEqual(lines(restoreScript(family, two, unhooked)).filter((l) => l.includes('INPUT 1')), [`-I INPUT 1 ${hook}`]);
  }
});

test('restoreScript with docker: false writes the inbound rules alone, even where DOCKER-USER exists', (t) => {
  const script = restoreScript('v4', { ...two, docker: false }, parseTable(dockerSave));
  for (const chain of [CHAINS.forward, CHAINS.containers, 'DOCKER-USER']) t.false(script.includes(chain), chain);
  t.deepEqual(ruleSet({ members: [], publicPorts: [22], docker: false }).docker, false);
});

test('restoreScript takes away the forward chains and their hook when they no longer apply, in the same transaction', (t) => {
  const hooked = restored(parseTable(dockerSave), restoreScript('v4', two, parseTable(dockerSave)));
  const script = restoreScript('v4', { ...two, docker: false }, hooked);
  t.deepEqual(lines(script).filter((l) => /^-[DFX] /.test(l)), [
    `-D DOCKER-USER ${dockerHook}`,
    '-F QUARRY-FORWARD', '-F QUARRY-CONTAINERS', '-X QUARRY-FORWARD', '-X QUARRY-CONTAINERS',
  ]);
  const after = restored(hooked, script);
  t.deepEqual(after.chains.get('DOCKER-USER'), ['-A DOCKER-USER -j RETURN']);
  t.false(after.chains.has(CHAINS.forward));
  t.is(restoreScript('v4', { ...two, docker: false }, after), '');
  // Docker gone (its chains removed), quarry's forward chains left behind: removed too.
  const gone = restored(hooked, '');
  gone.chains.delete('DOCKER-USER');
  gone.chains.delete('DOCKER');
  t.deepEqual(lines(restoreScript('v4', two, gone)).filter((l) => /^-[DFX] /.test(l)), [
    '-F QUARRY-FORWARD', '-F QUARRY-CONTAINERS', '-X QUARRY-FORWARD', '-X QUARRY-CONTAINERS',
  ]);
});

test('ruleSet({ members, publicPorts }) and ruleSet(members, publicPorts) are the same rule set', (t) => {
  const members = [{ id: 'b', ip: '10.0.0.2' }, { id: 'a', ip: '10.0.0.1' }];
  t.deepEqual(ruleSet({ members, publicPorts: [443, 22] }), ruleSet(members, [443, 22]));
  t.deepEqual(ruleSet({ members, publicPorts: [22] }).members.v4, ['10.0.0.1', '10.0.0.2']);
});

// ---------------------------------------------------------------------------------------------
// parseTable, tableInForce
// ---------------------------------------------------------------------------------------------

test('parseTable reads only the filter table', (t) => {
  const state = parseTable(dockerSave);
  t.false(state.chains.has('PREROUTING'));
  t.deepEqual(state.chains.get('FORWARD'), ['-A FORWARD -j DOCKER-USER', '-A FORWARD -o docker0 -j DOCKER']);
  t.deepEqual(state.chains.get('OUTPUT'), []);
});

test('tableInForce: nothing of quarry\'s, without and with docker', (t) => {
  t.deepEqual(tableInForce(parseTable(emptySave())), { input: false, dockerUser: null, public: [] });
  t.deepEqual(tableInForce(parseTable(dockerSave)), { input: false, dockerUser: false, public: [] });
});

test('tableInForce reads back the hooks and the public ports of what restoreScript wrote', (t) => {
  const rules: RuleSet = { members: { v4: ['10.0.0.1'], v6: [] }, public: [22, 80, 443], docker: true };
  const script = restoreScript('v4', rules, parseTable(dockerSave));
  const inForce = `*filter\n:INPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n-A INPUT ${hook}\n-A DOCKER-USER ${dockerHook}\n` +
    `${lines(script).filter((l) => l.startsWith(':QUARRY') || l.startsWith('-A QUARRY')).join('\n')}\nCOMMIT\n`;
  t.deepEqual(tableInForce(parseTable(inForce)), { input: true, dockerUser: true, public: [22, 80, 443] });
  // DOCKER-USER there but not hooked.
  t.deepEqual(tableInForce(parseTable(inForce.replace(`-A DOCKER-USER ${dockerHook}\n`, ''))), { input: true, dockerUser: false, public: [22, 80, 443] });
  // Someone else's multiport rule is not a public port of quarry's.
  t.deepEqual(tableInForce(parseTable(inForce.replace('COMMIT', '-A QUARRY-INPUT -p tcp -m multiport --dports 9999 -j ACCEPT\nCOMMIT'))).public, [22, 80, 443]);
});
