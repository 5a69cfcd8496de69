/**
 * `npm run bench:locknet`: how long locknet takes to put a membership in force, against the
 * naive way (one `iptables -A … -s IP -j ACCEPT` per member), measured side by side in one run.
 *
 * - first apply: nothing of quarry's in force yet;
 * - apply: a full apply by a fresh `new Locknet()` (nothing remembered, so it reads the sets
 *   and both tables) over other rules in force: the members swapped in, and both families'
 *   rules rewritten (the public ports alternate between runs), as when a host's role changes;
 * - re-apply: the same, with these very rules already in force (as when the agent restarts):
 *   the tables are read and left alone, the members swapped in;
 * - join: a warm `Locknet` that has applied N members, applying N+1 (one `ipset restore`);
 * - naive: `iptables -A` once per member into a chain of the bench's own, at 10 and 100
 *   members, extrapolated per member.
 *
 * Runs as root. It makes a network namespace of its own and re-executes itself inside it
 * (`ip netns exec NS node … --inside`), so every tool runs exactly as on a server, with no
 * `ip netns exec` added to each call; the namespace is removed at the end. Members are IPv4.
 * The last line printed is JSON: {applyMs1000, joinMs1000, applyMs10, …, naivePerMemberMs, …}.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Locknet, ruleSet, runTool, type Member, type RuleSet } from '../locknet/index.js';

const SIZES = [10, 100, 1_000, 10_000];
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const NAIVE = [[10, 3], [100, 2]] as const; // [members, runs]
const PUBLIC = [22];
const OTHER_PUBLIC = [22, 2222];

/** Member n (0-based): 10.a.b.c, distinct for n < 2^24. */
function members(n: number): Member[] {
  return Array.from({ length: n }, (_, i) => {
    const k = i + 1;
    return { id: `s${k}`, ip: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}` };
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (ms: number) => Math.round(ms * 100) / 100;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function inside(): Promise<void> {
  const result: Record<string, number | string> = {};
  const rows: string[][] = [];
  // Warm up node's child_process and the tools' caches (and check they all run).
  await new Locknet().apply(ruleSet(members(3), PUBLIC));
  await new Locknet().flush();

  for (const n of SIZES) {
    const rules: RuleSet = ruleSet({ members: members(n), publicPorts: PUBLIC });
    const plusOne: RuleSet = ruleSet({ members: members(n + 1), publicPorts: PUBLIC });
    const other: RuleSet = ruleSet({ members: members(n).slice(1), publicPorts: OTHER_PUBLIC });
    await new Locknet().flush();
    const cold = await timed(() => new Locknet().apply(rules));
    const applies: number[] = [];
    const reapplies: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await new Locknet().apply(other);
      applies.push(await timed(async () => {
        const applied = await new Locknet().apply(rules);
        if (applied.rewritten.length !== 2) throw new Error(`a full apply rewrote the rules of ${applied.rewritten.join(', ') || 'no family'}`);
      }));
      reapplies.push(await timed(async () => {
        const applied = await new Locknet().apply(rules);
        if (applied.rewritten.length !== 0) throw new Error(`a re-apply rewrote the rules of ${applied.rewritten.join(', ')}`);
      }));
    }

    const warm = new Locknet();
    await warm.apply(rules);
    const joins: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await warm.apply(rules);
      const ms = await timed(async () => {
        const applied = await warm.apply(plusOne);
        if (applied.rewritten.length !== 0) throw new Error(`a join rewrote the rules of ${applied.rewritten.join(', ')}`);
      });
      joins.push(ms);
    }
    const shown = await new Locknet().show();
    if (shown.members.v4.length !== n + 1) throw new Error(`after the join ${shown.members.v4.length} members are in force, not ${n + 1}`);

    result[`applyMs${n}`] = round(median(applies));
    result[`joinMs${n}`] = round(median(joins));
    result[`reapplyMs${n}`] = round(median(reapplies));
    result[`coldApplyMs${n}`] = round(cold);
    const range = (xs: number[]) => `${round(Math.min(...xs))}–${round(Math.max(...xs))}`;
    rows.push([n.toLocaleString('en'), `${round(cold)}`, `${round(median(applies))}`, range(applies),
      `${round(median(reapplies))}`, range(reapplies), `${round(median(joins))}`, range(joins)]);
  }
  await new Locknet().flush();

  // The naive baseline: one iptables -A per member, into a chain of the bench's own.
  const naiveRows: string[][] = [];
  const perMember: number[] = [];
  await runTool('iptables', ['-N', 'QBENCH-NAIVE']);
  for (const [n, runs] of NAIVE) {
    const ips = members(n).map((m) => m.ip);
    const totals: number[] = [];
    for (let r = 0; r < runs; r++) {
      await runTool('iptables', ['-F', 'QBENCH-NAIVE']);
      totals.push(await timed(async () => {
        for (const ip of ips) await runTool('iptables', ['-A', 'QBENCH-NAIVE', '-s', ip, '-j', 'ACCEPT']);
      }));
    }
    const total = median(totals);
    perMember.push(total / n);
    result[`naiveMs${n}`] = round(total);
    naiveRows.push([n.toLocaleString('en'), `${round(total)}`, `${round(total / n)}`]);
  }
  await runTool('iptables', ['-F', 'QBENCH-NAIVE']);
  await runTool('iptables', ['-X', 'QBENCH-NAIVE']);
  const per = perMember.at(-1)!;
  result.naivePerMemberMs = round(per);
  result.naiveMs1000Extrapolated = Math.round(per * 1000);
  result.naiveMs10000Extrapolated = Math.round(per * 10_000);
  result.applySpeedup1000 = Math.round((per * 1000) / (result.applyMs1000 as number));
  result.runs = RUNS;
  result.mode = 'bench re-executed inside its own network namespace (ip netns exec); tools spawned directly';

  const table = (head: string[], body: string[][]) => {
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i]!)).join('  ');
    return [line(head), ...body.map(line)].join('\n');
  };
  console.log(`locknet, ${RUNS} runs each, medians in ms (${result.mode})`);
  console.log(table(['members', 'first apply', 'apply', 'apply range', 're-apply', 're-apply range', 'join', 'join range'], rows));
  console.log('');
  console.log('naive: one `iptables -A ... -s IP -j ACCEPT` per member');
  console.log(table(['members', 'total', 'per member'], naiveRows));
  console.log(`extrapolated: 1,000 members ≈ ${result.naiveMs1000Extrapolated} ms, 10,000 ≈ ${result.naiveMs10000Extrapolated} ms; ` +
    `locknet's full apply of 1,000 is ${result.applySpeedup1000}× faster`);
  console.log(`goals: apply of 1,000 ≤ 100 ms: ${(result.applyMs1000 as number) <= 100 ? 'met' : 'NOT met'}; ` +
    `one join at 1,000 ≤ 20 ms: ${(result.joinMs1000 as number) <= 20 ? 'met' : 'NOT met'}`);
  console.log(JSON.stringify(result));
}

function outside(): void {
  if (process.getuid?.() !== 0) {
    console.error('bench:locknet makes a network namespace and firewalls in it: run it as root');
    process.exit(1);
  }
  const ns = `qlk-bench-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--inside'],
      { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

if (process.argv.includes('--inside')) await inside();
else outside();
