import { spawn } from 'node:child_process';
import { LocknetApplyError } from './errors.js';
import {
  FAMILIES, SETS, chainRules, flushScript, hasDockerUser, ipsetScript, parseTable, restoreScript, tableInForce,
  type Family, type RuleSet, type TableState,
} from './rules.js';

/** The binaries, per family, and the Debian package each comes from. */
const TOOLS: Record<Family, { save: string; restore: string }> = {
  v4: { save: 'iptables-save', restore: 'iptables-restore' },
  v6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
};
const PACKAGE: Record<string, string> = { ipset: 'ipset' };

/** What is in force on this host, read back from the kernel. */
export interface InForce {
  /** Whether quarry's rules are in force (its INPUT hook is there in some family). */
  on: boolean;
  members: Record<Family, string[]>;
  public: number[];
  hooks: Record<Family, { input: boolean; dockerUser: boolean | null }>;
}

/** What an apply did. */
export interface Applied {
  rules: RuleSet;
  /** Whether the member sets were rebuilt and swapped in (false: the members in force were these). */
  swapped: boolean;
  /** Families whose rules were (re)written; empty when only the members changed, or nothing did. */
  rewritten: Family[];
  /** Families where Docker's DOCKER-USER chain is there and hooked. */
  docker: Family[];
  ms: number;
}

export interface LocknetOptions {
  /** Runs a binary with `input` on stdin; default: spawn it (tests and benchmarks may wrap it, e.g. in `ip netns exec`). */
  exec?: (file: string, args: string[], input?: string) => Promise<string>;
  /** How long the rules read from the kernel are trusted before being read again; default 30 s. */
  trustMs?: number;
  /** Told, in one line, what each apply and flush changed. */
  log?: (line: string) => void;
}

/** Runs a tool, stdin from `input`, resolving with its stdout; a failure names the tool and says what it said. */
export function runTool(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    child.once('error', (err: NodeJS.ErrnoException) => {
      const pkg = PACKAGE[file] ?? 'iptables';
      reject(new LocknetApplyError(err.code === 'ENOENT'
        ? `locknet needs ${file}, which is not installed here (Debian: apt-get install ${pkg})`
        : `cannot run ${file}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new LocknetApplyError(`${file} ${args.join(' ')} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/**
 * locknet's applier: puts a rule set in force on the host (the network namespace) it runs
 * in, shows what is in force, and takes it away. Members go into ipsets swapped in whole;
 * rules go in with one `iptables-restore --noflush` per family (one transaction each), into
 * quarry's own chains and the hooks that lead there. A step that fails leaves what was in
 * force before it (nothing is ever flushed first): fail closed, never open.
 *
 * It remembers what it applied: when only the members change (a join, a leave) and the rules
 * it wrote are recent, an apply is one `ipset restore`.
 */
export class Locknet {
  private readonly exec: NonNullable<LocknetOptions['exec']>;
  private readonly trustMs: number;
  private readonly log: (line: string) => void;
  /** What the last apply left in force: the members, and per family the chains' rules and whether they judge forwarding. */
  private last: { members: string; rules: Record<Family, string>; docker: Record<Family, boolean>; at: number } | undefined;

  constructor(options: LocknetOptions = {}) {
    this.exec = options.exec ?? runTool;
    this.trustMs = options.trustMs ?? 30_000;
    this.log = options.log ?? (() => undefined);
  }

  private async table(family: Family): Promise<TableState> {
    return parseTable(await this.exec(TOOLS[family].save, ['-t', 'filter']));
  }

  /**
   * Puts `rules` in force: the member sets first (the rules name them), then each family's
   * rules, skipped where the table already holds them. A failure leaves in force what was (a
   * family whose restore failed keeps its old rules) and throws a LocknetApplyError.
   */
  async apply(rules: RuleSet): Promise<Applied> {
    const started = performance.now();
    let applied: Omit<Applied, 'ms'> | undefined;
    if (this.trusted(rules)) {
      try {
        applied = await this.swapOnly(rules);
      } catch (err) {
        // The kernel is not what was remembered (someone flushed, or a set is missing): read it.
        this.log(`locknet: the members could not be swapped in alone (${(err as Error).message}); reading what is in force`);
        this.last = undefined;
      }
    }
    try {
      applied ??= await this.applyRead(rules);
    } catch (err) {
      this.last = undefined;
      throw err;
    }
    const ms = performance.now() - started;
    this.log(`locknet: ${applied.swapped ? 'members swapped in' : 'members unchanged'}, ` +
      `${applied.rewritten.length > 0 ? `rules written (${applied.rewritten.join(', ')})` : 'rules unchanged'} in ${Math.round(ms)} ms`);
    return { ...applied, ms };
  }

  /** Whether what the last apply left can be taken as still in force, and these rules differ from it only in the members. */
  private trusted(rules: RuleSet): boolean {
    const last = this.last;
    if (last === undefined || Date.now() - last.at >= this.trustMs) return false;
    return FAMILIES.every((f) => chainRules(f, rules, last.docker[f]).join('\n') === last.rules[f]);
  }

  /** A join or a leave while the rules are known to be in force: one `ipset restore`, or nothing. */
  private async swapOnly(rules: RuleSet): Promise<Omit<Applied, 'ms'>> {
    const last = this.last!;
    const members = JSON.stringify(rules.members);
    const swapped = members !== last.members;
    if (swapped) {
      await this.exec('ipset', ['restore'], ipsetScript(rules, new Set(FAMILIES.map((f) => SETS[f]))));
      last.members = members;
    }
    return { rules, swapped, rewritten: [], docker: FAMILIES.filter((f) => last.docker[f]) };
  }

  /** Reads the sets and both tables, swaps the members in, and writes each family's rules that differ. */
  private async applyRead(rules: RuleSet): Promise<Omit<Applied, 'ms'>> {
    const [sets, v4, v6] = await Promise.all([this.sets(), this.table('v4'), this.table('v6')]);
    const tables: Record<Family, TableState> = { v4, v6 };
    // The members first: the rules name the sets, so they must exist before the rules do.
    await this.exec('ipset', ['restore'], ipsetScript(rules, sets));
    const scripts = FAMILIES.map((f) => [f, restoreScript(f, rules, tables[f])] as const).filter(([, script]) => script !== '');
    await Promise.all(scripts.map(([f, script]) => this.exec(TOOLS[f].restore, ['--noflush'], script)));
    const docker = FAMILIES.filter((f) => rules.docker && hasDockerUser(tables[f]));
    this.last = {
      members: JSON.stringify(rules.members),
      rules: { v4: chainRules('v4', rules, docker.includes('v4')).join('\n'), v6: chainRules('v6', rules, docker.includes('v6')).join('\n') },
      docker: { v4: docker.includes('v4'), v6: docker.includes('v6') },
      at: Date.now(),
    };
    return { rules, swapped: true, rewritten: scripts.map(([f]) => f), docker };
  }

  /** What is in force, read from the kernel (not from what this object remembers). */
  async show(): Promise<InForce> {
    const [v4, v6, members4, members6] = await Promise.all([
      this.table('v4'), this.table('v6'), this.setMembers(SETS.v4), this.setMembers(SETS.v6),
    ]);
    const found = { v4: tableInForce(v4), v6: tableInForce(v6) };
    return {
      on: found.v4.input || found.v6.input,
      members: { v4: members4, v6: members6 },
      public: [...new Set([...found.v4.public, ...found.v6.public])].sort((a, b) => a - b),
      hooks: {
        v4: { input: found.v4.input, dockerUser: found.v4.dockerUser },
        v6: { input: found.v6.input, dockerUser: found.v6.dockerUser },
      },
    };
  }

  private async setMembers(set: string): Promise<string[]> {
    let text: string;
    try {
      text = await this.exec('ipset', ['save', set]);
    } catch (err) {
      if (/does not exist/.test((err as Error).message)) return [];
      throw err;
    }
    return text.split('\n').filter((l) => l.startsWith(`add ${set} `)).map((l) => l.split(' ')[2]!);
  }

  /** The names of the ipsets there now. */
  private async sets(): Promise<Set<string>> {
    return new Set((await this.exec('ipset', ['list', '-n'])).split('\n').filter(Boolean));
  }

  /** Takes quarry's rules and sets away (and nothing else); a host without them is left as it is. */
  async flush(): Promise<{ removed: boolean }> {
    this.last = undefined;
    const [v4, v6] = await Promise.all([this.table('v4'), this.table('v6')]);
    const scripts = FAMILIES.map((f) => [f, flushScript(f === 'v4' ? v4 : v6)] as const).filter(([, script]) => script !== '');
    // The rules before the sets: a set that a rule names cannot be destroyed.
    await Promise.all(scripts.map(([f, script]) => this.exec(TOOLS[f].restore, ['--noflush'], script)));
    const ours = [...await this.sets()].filter((name) => /^quarry-members[46](-next)?$/.test(name));
    if (ours.length > 0) await this.exec('ipset', ['restore'], ours.map((s) => `destroy ${s}\n`).join(''));
    const removed = scripts.length > 0 || ours.length > 0;
    if (removed) this.log(`locknet: flushed (${scripts.map(([f]) => `${f} rules`).concat(ours).join(', ')})`);
    return { removed };
  }
}
