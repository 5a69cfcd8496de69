import { isIP } from 'node:net';
import type { Member } from './members.js';

/** IPv4 or IPv6: each has its own table (iptables, ip6tables) and its own member set. */
export type Family = 'v4' | 'v6';
export const FAMILIES: readonly Family[] = ['v4', 'v6'];

/** quarry's own chains and sets: the only ones locknet ever changes. */
export const CHAINS = {
  input: 'QUARRY-INPUT',
  forward: 'QUARRY-FORWARD',
  containers: 'QUARRY-CONTAINERS',
} as const;
export const SETS: Record<Family, string> = { v4: 'quarry-members4', v6: 'quarry-members6' };
/** The comment on the rules that jump into quarry's chains (and on the public-ports rule). */
export const HOOK_COMMENT = 'quarry locknet';
export const PUBLIC_COMMENT = 'quarry locknet: public';

/** What a host's firewall lets in: the members' addresses by family, and the public TCP ports. */
export interface RuleSet {
  members: Record<Family, string[]>;
  public: number[];
  /**
   * Whether traffic forwarded into containers is judged too (Docker's published ports), in
   * each family whose filter table has Docker's `DOCKER-USER` chain; without that chain, or
   * when false, the inbound rules alone.
   */
  docker: boolean;
}

/** What a rule set is made from: the members (server records), the public TCP ports, and `docker` (default true). */
export interface RuleSetInput {
  members: readonly Member[];
  publicPorts: readonly number[];
  docker?: boolean;
}

/**
 * A rule set: addresses split by family, sorted, without repeats (IPv6 in one spelling); the
 * public ports sorted, without repeats. `ruleSet(members, publicPorts)` is the same as
 * `ruleSet({ members, publicPorts })`.
 */
export function ruleSet(input: RuleSetInput): RuleSet;
export function ruleSet(members: readonly Member[], publicPorts: readonly number[]): RuleSet;
export function ruleSet(first: RuleSetInput | readonly Member[], ports?: readonly number[]): RuleSet {
  const { members, publicPorts, docker = true } = isInput(first) ? first : { members: first, publicPorts: ports ?? [] };
  const by: Record<Family, Set<string>> = { v4: new Set(), v6: new Set() };
  for (const m of members) {
    const family = isIP(m.ip);
    if (family === 4) by.v4.add(m.ip);
    else if (family === 6) by.v6.add(canonicalV6(m.ip));
  }
  return {
    members: { v4: [...by.v4].sort(compareAddress), v6: [...by.v6].sort() },
    public: [...new Set(publicPorts)].sort((a, b) => a - b),
    docker,
  };
}

function isInput(value: RuleSetInput | readonly Member[]): value is RuleSetInput {
  return !Array.isArray(value);
}

/** One spelling per IPv6 address (`2001:DB8:0::1` → `2001:db8::1`): ipset refuses to add an address twice. */
function canonicalV6(ip: string): string {
  try {
    return new URL(`http://[${ip}]`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}

function compareAddress(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/**
 * The `ipset restore` script that puts the members in force: each family's set is built whole
 * as `<set>-next` and swapped with the live one in one step, so that the rules see either the
 * old members or the new ones, never a set half filled. `existing` names the sets there now
 * (`ipset list -n`): the live set is made when missing, a `-next` left over is destroyed first.
 */
export function ipsetScript(rules: RuleSet, existing: ReadonlySet<string>): string {
  const lines: string[] = [];
  for (const family of FAMILIES) {
    const set = SETS[family];
    const next = `${set}-next`;
    const type = `hash:ip family ${family === 'v4' ? 'inet' : 'inet6'}`;
    if (!existing.has(set)) lines.push(`create ${set} ${type}`);
    if (existing.has(next)) lines.push(`destroy ${next}`);
    lines.push(`create ${next} ${type}${sized(rules.members[family].length)}`);
    for (const ip of rules.members[family]) lines.push(`add ${next} ${ip}`);
    lines.push(`swap ${next} ${set}`, `destroy ${next}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A set's size options for `n` members: ipset's defaults (hashsize 1024, at most 65,536) up to
 * 1,024 members; above, a hash made that large at once (filling a small one grows it again and
 * again: 10,000 members go in three times faster) and room for twice the hash.
 */
function sized(n: number): string {
  if (n <= 1024) return '';
  const hashsize = 2 ** Math.ceil(Math.log2(n));
  return ` hashsize ${hashsize} maxelem ${Math.max(65536, 2 * hashsize)}`;
}

/** What is in a family's filter table that the rules depend on (read from `iptables-save`). */
export interface TableState {
  /** The table's chains, and each one's rules as `iptables-save` prints them (`-A CHAIN …`). */
  chains: Map<string, string[]>;
}

/** The lines of one family's filter table from `iptables-save -t filter`. */
export function parseTable(text: string): TableState {
  const chains = new Map<string, string[]>();
  let inFilter = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) inFilter = line === '*filter';
    else if (!inFilter) continue;
    else if (line.startsWith(':')) chains.set(line.slice(1).split(' ')[0]!, []);
    else if (line.startsWith('-A ')) {
      const chain = line.slice(3).split(' ')[0]!;
      if (!chains.has(chain)) chains.set(chain, []);
      chains.get(chain)!.push(line);
    }
  }
  return { chains };
}

const hookRule = (chain: string, target: string) => `-A ${chain} -m comment --comment "${HOOK_COMMENT}" -j ${target}`;
const jumpsTo = (line: string, target: string) => new RegExp(` -[jg] ${target}( |$)`).test(line);

/**
 * Lines that take some of quarry's chains out of a table: every jump into them from the other
 * chains removed, then those of them there emptied and deleted. Nothing when none is there.
 */
function removeChains(state: TableState, chains: readonly string[]): string[] {
  const out: string[] = [];
  for (const [chain, rules] of state.chains) {
    if (chains.includes(chain)) continue;
    for (const rule of rules) if (chains.some((target) => jumpsTo(rule, target))) out.push(`-D${rule.slice(2)}`);
  }
  const present = chains.filter((c) => state.chains.has(c));
  for (const chain of present) out.push(`-F ${chain}`);
  for (const chain of present) out.push(`-X ${chain}`);
  return out;
}

/** Lines that make `hook` the first rule of `chain`, exactly once (nothing when it is already). */
function hookFirst(state: TableState, chain: string, target: string): string[] {
  const rules = state.chains.get(chain) ?? [];
  const jumps = rules.filter((r) => jumpsTo(r, target));
  if (jumps.length === 1 && rules[0] === jumps[0]) return [];
  return [...jumps.map((r) => `-D${r.slice(2)}`), `-I ${chain} 1${hookRule(chain, target).slice(`-A ${chain}`.length)}`];
}

/** Whether a family's table has Docker's `DOCKER-USER` chain: forwarded traffic to containers is judged there. */
export function hasDockerUser(state: TableState): boolean {
  return state.chains.has('DOCKER-USER');
}

/**
 * The body of quarry's chains for one family (without the hooks): what the firewall lets in.
 * On the host: loopback, replies, members, the host's own containers (docker0, br-*), the public ports, DHCP replies (and on IPv6 the
 * neighbour and router discovery that IPv6 needs); the rest is dropped. Traffic forwarded into
 * containers (Docker's published ports, which never pass INPUT) is judged the same way when
 * `docker` is set; containers' own traffic and the host's other forwarding pass untouched.
 */
export function chainRules(family: Family, rules: RuleSet, docker: boolean): string[] {
  const set = SETS[family];
  const { input, forward, containers } = CHAINS;
  const out = [`:${input} - [0:0]`];
  if (docker) out.push(`:${forward} - [0:0]`, `:${containers} - [0:0]`);
  out.push(
    `-A ${input} -i lo -j RETURN`,
    `-A ${input} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    `-A ${input} -m set --match-set ${set} src -j RETURN`,
    // The host's own containers reaching the host (a published port of a container beside
    // them comes in through docker's proxy here, not through NAT): they are quarry's.
    `-A ${input} -i docker0 -j RETURN`,
    `-A ${input} -i br-+ -j RETURN`,
  );
  for (let i = 0; i < rules.public.length; i += 15) {
    out.push(`-A ${input} -p tcp -m multiport --dports ${rules.public.slice(i, i + 15).join(',')} -m comment --comment "${PUBLIC_COMMENT}" -j RETURN`);
  }
  if (family === 'v4') {
    out.push(`-A ${input} -p udp -m udp --sport 67 --dport 68 -j RETURN`);
  } else {
    for (const type of [133, 134, 135, 136]) out.push(`-A ${input} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j RETURN`);
    out.push(`-A ${input} -p udp -m udp --sport 547 --dport 546 -j RETURN`);
  }
  out.push(`-A ${input} -j DROP`);
  if (docker) {
    out.push(
      `-A ${forward} -o docker0 -j ${containers}`,
      `-A ${forward} -o br-+ -j ${containers}`,
      `-A ${containers} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
      `-A ${containers} -i docker0 -j RETURN`,
      `-A ${containers} -i br-+ -j RETURN`,
      `-A ${containers} -m set --match-set ${set} src -j RETURN`,
    );
    for (const port of rules.public) out.push(`-A ${containers} -p tcp -m conntrack --ctorigdstport ${port} -j RETURN`);
    out.push(`-A ${containers} -j DROP`);
  }
  return out;
}

/**
 * The `iptables-restore --noflush` script for one family: quarry's chains written whole (a
 * chain named in a `--noflush` restore is emptied first), and the hooks that jump into them
 * made the first rule of INPUT (and of DOCKER-USER when Docker is there and `rules.docker`),
 * exactly once; forward chains left from an earlier apply are removed when they no longer
 * apply. One restore is one transaction: the old rules or the new ones, never half. Nothing
 * outside quarry's chains changes but those hooks.
 *
 * Empty when the table already holds exactly these rules and hooks: nothing to write.
 */
export function restoreScript(family: Family, rules: RuleSet, state: TableState): string {
  const docker = rules.docker && hasDockerUser(state);
  const body = chainRules(family, rules, docker);
  const changes = [
    ...hookFirst(state, 'INPUT', CHAINS.input),
    ...(docker ? hookFirst(state, 'DOCKER-USER', CHAINS.forward) : removeChains(state, [CHAINS.forward, CHAINS.containers])),
  ];
  if (changes.length === 0 && holds(state, body)) return '';
  return `*filter\n${[...body, ...changes].join('\n')}\nCOMMIT\n`;
}

/** Whether each chain that `body` declares is in the table with exactly the rules `body` gives it. */
function holds(state: TableState, body: readonly string[]): boolean {
  return body.filter((l) => l.startsWith(':')).every((declared) => {
    const chain = declared.slice(1).split(' ')[0]!;
    const want = body.filter((l) => l.startsWith(`-A ${chain} `));
    const have = state.chains.get(chain);
    return have !== undefined && have.length === want.length && have.every((l, i) => l === want[i]);
  });
}

/**
 * The `iptables-restore --noflush` script that takes quarry's rules out of one family's
 * table: every jump into quarry's chains removed, the chains emptied and deleted. Empty when
 * there is nothing of quarry's.
 */
export function flushScript(state: TableState): string {
  const lines = removeChains(state, Object.values(CHAINS));
  return lines.length === 0 ? '' : `*filter\n${lines.join('\n')}\nCOMMIT\n`;
}

/** What `show` reports of one family's table: quarry's hooks, and the public ports in force. */
export function tableInForce(state: TableState): { input: boolean; dockerUser: boolean | null; public: number[] } {
  const input = (state.chains.get('INPUT') ?? []).some((r) => jumpsTo(r, CHAINS.input));
  const dockerUser = hasDockerUser(state) ? (state.chains.get('DOCKER-USER') ?? []).some((r) => jumpsTo(r, CHAINS.forward)) : null;
  const ports = new Set<number>();
  for (const rule of state.chains.get(CHAINS.input) ?? []) {
    const m = /--dports (\S+)/.exec(rule);
    if (m && rule.includes(PUBLIC_COMMENT)) for (const p of m[1]!.split(',')) ports.add(Number(p));
  }
  return { input, dockerUser, public: [...ports].sort((a, b) => a - b) };
}
