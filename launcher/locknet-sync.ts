import type { Etcd3, IKeyValue } from 'etcd3';
import { isIP } from 'node:net';
import type { NetworkHost } from '../plan/index.js';
import { followPrefix } from './etcd-follow.js';
import { keys } from './etcd-keys.js';

/** What a host's firewall follows, and how it went the last time. */
export interface LocknetState {
  /** When the membership last changed in force (ISO time), or null before the first time. */
  at: string | null;
  /** How many members are in force. */
  members: number;
  /** The ports open to anyone (TCP). */
  public: number[];
  /** `on`: the rules are in force and follow the members; `failed`: the last change could not be applied (the one before stays in force). */
  state: 'on' | 'failed' | 'starting';
  /** Why the last change failed. */
  error?: string;
}

export interface LocknetSyncOptions {
  etcd: Etcd3;
  /** Puts a membership in force on this host (locknet's applier); throws when it cannot. */
  apply: (members: NetworkHost[]) => Promise<void>;
  publicPorts: number[];
  log?: (line: string) => void;
  /** Told every change of state (the agent puts it under its lease for `quarry servers`). */
  onState?: (state: LocknetState) => void;
  /** How long to wait after a change for more of them before applying; default 25 ms. */
  settleMs?: number;
  /**
   * How often the membership in force is put in force again, so that rules someone removed
   * (an `iptables -F`, a restarted firewall service) come back; default 60 s.
   */
  reapplyEveryMs?: number;
}

export interface LocknetSync {
  /** Resolves once the first membership read from etcd is in force. */
  readonly ready: Promise<void>;
  state(): LocknetState;
  stop(): Promise<void>;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * One membership record from etcd, or the reason it cannot be one. The key's id and the
 * record's must agree, and `ip` must be an address.
 */
export function memberOf(key: string, value: string): NetworkHost | string {
  const id = key.slice(keys.networkHosts.length);
  let record: unknown;
  try {
    record = JSON.parse(value);
  } catch {
    return `${key}: not JSON`;
  }
  const ip = (record as { ip?: unknown } | null)?.ip;
  if (typeof ip !== 'string' || isIP(ip) === 0) return `${key}: "ip" is ${JSON.stringify(ip)}, not an IPv4 or IPv6 address`;
  return { id, ip };
}

/**
 * Keeps this host's firewall following `/quarry/network/hosts/`: the prefix is read whole and
 * put in force, then watched; changes that come together are applied together, one apply at a
 * time, always the newest membership. A membership that cannot be applied (a bad record, the
 * tools failing) leaves the one in force as it is (fail closed) and is tried again with a
 * growing delay. When etcd is away nothing changes: the rules in force stay.
 */
export function startLocknetSync(options: LocknetSyncOptions): LocknetSync {
  const { etcd } = options;
  const log = options.log ?? (() => undefined);
  const settleMs = options.settleMs ?? 25;
  const records = new Map<string, string>();
  let revision = 0;
  let closed = false;
  let dirty = false;
  let applying: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let failures = 0;
  let lastError: string | undefined;
  let lastIds = '';
  let current: LocknetState = { at: null, members: 0, public: [...options.publicPorts], state: 'starting' };
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => { resolveReady = resolve; });

  const setState = (next: LocknetState) => {
    current = next;
    options.onState?.(next);
  };

  async function applyOnce(): Promise<void> {
    const members: NetworkHost[] = [];
    const bad: string[] = [];
    for (const [key, value] of records) {
      const member = memberOf(key, value);
      if (typeof member === 'string') bad.push(member);
      else members.push(member);
    }
    if (bad.length > 0) throw new Error(`bad membership record${bad.length === 1 ? '' : 's'}: ${bad.join('; ')}`);
    members.sort((a, b) => a.id.localeCompare(b.id));
    await options.apply(members);
    const first = current.at === null;
    const ids = members.map((m) => `${m.id}=${m.ip}`).join(',');
    const same = !first && current.members === members.length && current.state === 'on' && lastError === undefined && lastIds === ids;
    lastIds = ids;
    if (same) return; // put in force again as it was (a periodic re-apply): nothing to say
    if (first || lastError !== undefined) log(`locknet: in force: ${members.length} member${members.length === 1 ? '' : 's'} (${members.map((m) => m.id).join(', ') || 'none'}), public tcp ${options.publicPorts.join(',')}`);
    else log(`locknet: members now ${members.map((m) => m.id).join(', ') || 'none'}`);
    setState({ at: new Date().toISOString(), members: members.length, public: [...options.publicPorts], state: 'on' });
    lastError = undefined;
    failures = 0;
    resolveReady();
  }

  /** Applies the newest membership, once the changes that come together are all in. */
  function schedule(): void {
    dirty = true;
    if (applying || closed) return;
    applying = (async () => {
      await delay(settleMs);
      while (dirty && !closed) {
        dirty = false;
        try {
          await applyOnce();
        } catch (err) {
          const message = (err as Error).message.split('\n')[0]!.slice(0, 300);
          if (message !== lastError) log(`locknet: cannot apply the membership (${message}); the rules in force stay`);
          lastError = message;
          failures += 1;
          setState({ ...current, state: 'failed', error: message });
          clearTimeout(retry);
          retry = setTimeout(schedule, Math.min(250 * 2 ** Math.min(failures, 6), 10_000));
          retry.unref();
        }
      }
    })().finally(() => {
      applying = undefined;
      if (dirty && !closed) schedule();
    });
  }

  async function resync(): Promise<number> {
    const response = await etcd.getAll().prefix(keys.networkHosts).exec();
    records.clear();
    for (const kv of response.kvs) records.set(kv.key.toString(), kv.value.toString());
    revision = Number(response.header.revision);
    schedule();
    return revision;
  }

  function change(kind: 'put' | 'delete', kv: IKeyValue): void {
    if (Number(kv.mod_revision) <= revision) return;
    if (kind === 'put') records.set(kv.key.toString(), kv.value.toString());
    else records.delete(kv.key.toString());
    schedule();
  }

  // While etcd does not answer nothing changes here: the rules in force stay.
  const follower = followPrefix({ etcd, prefix: keys.networkHosts, resync, change, name: 'locknet', log });
  const reapply = setInterval(() => { if (current.at !== null) schedule(); }, options.reapplyEveryMs ?? 60_000);
  reapply.unref();
  return {
    ready,
    state: () => current,
    async stop() {
      closed = true;
      clearTimeout(retry);
      clearInterval(reapply);
      await follower.stop();
      await applying?.catch(() => undefined);
    },
  };
}
