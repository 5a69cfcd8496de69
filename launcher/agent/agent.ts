import { join } from 'node:path';
import Docker from 'dockerode';
import { Etcd3, type Lease } from 'etcd3';
import { startCaretaker, type Caretaker } from '../caretaker.js';
import { startPeerRelay, type PeerRelay } from '../peer-relay.js';
import { startMetricsRelay, type MetricsRelay } from '../metrics-relay.js';
import { machineAddress } from './address.js';
import { startFileSync, type FileSync } from './files.js';
import { keys, type CareRecord } from '../etcd-keys.js';
import { startLocknetSync, type LocknetState, type LocknetSync } from '../locknet-sync.js';
import { locknetApplier } from '../locknet-apply.js';
import { readHostStats } from './proc.js';
import { loadKey, loadRecord, recordText, serverKey, serverRecord } from './records.js';
import type { AgentSettings } from './settings.js';
import { agentVersion } from './version.js';
import { within } from '../within.js';

export interface AgentOptions {
  settings: AgentSettings;
  /** One line per event (registered, lease lost, etcd away, stopped); default: nowhere. */
  log?: (line: string) => void;
  /** The engine whose containers are counted; default: dockerode at `settings.dockerSocket`. */
  docker?: Docker;
  /** An etcd client to use (not closed by the agent); default: one for `settings.etcd`. */
  etcd?: Etcd3;
  /** Where /proc is (tests); default `/proc`. */
  procRoot?: string;
  /** The caretaker looks after this stack's containers only (tests); default: every quarry container. */
  careStack?: string;
}

/** etcd's client for the settings: over TLS with the server's own certificate when given. */
export function agentEtcd(settings: AgentSettings): Etcd3 {
  return new Etcd3({
    hosts: settings.etcd, dialTimeout: 3000,
    ...(settings.tls && {
      credentials: {
        rootCertificate: Buffer.from(settings.tls.ca),
        certChain: Buffer.from(settings.tls.cert),
        privateKey: Buffer.from(settings.tls.key),
      },
    }),
  });
}

export interface Agent {
  /** Resolves once the record and the load were first put; rejects if stopped before. */
  readonly registered: Promise<void>;
  /** How many times the record was put on a new lease (1 after the first registration). */
  registrations(): number;
  /** Revokes the lease (the record goes at once), stops syncing files, closes its clients. */
  stop(): Promise<void>;
}

/** The count of containers quarry runs: running ones labelled quarry.stack. */
const STACK_LABEL = 'quarry.stack';
/** How long one call to the docker engine may take before it counts as not answering. */
const DOCKER_TIMEOUT_MS = 5000;
/** How long a stop waits for etcd to take the revocation. */
const REVOKE_TIMEOUT_MS = 3000;

function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n')[0]!.replace(/\s*Resolution note:.*$/, '').trim();
  if (/We lost connection to etcd and our lease has expired/.test(line)) {
    return 'etcd did not answer its keep-alives for twice the ttl';
  }
  return line.slice(0, 200);
}

/**
 * What kind of trouble an error is, so that a retry failing the same way is not logged again:
 * etcd3 says "no connection" and "circuit breaker open" in turns while etcd is away.
 */
function troubleOf(err: unknown): string {
  const text = messageOf(err);
  return /UNAVAILABLE|ECONNREFUSED|No connection established|circuit breaker is open|DEADLINE_EXCEEDED/.test(text) ? 'etcd unreachable' : text;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}


/**
 * The per-server caretaker. It grants an etcd lease of `ttlSeconds`, puts the server's record
 * (`/quarry/servers/<id>`) and its load (`…/load`) under it, and refreshes the load every
 * `loadIntervalMs`. When the lease is lost (etcd away for longer than twice the TTL, or etcd
 * forgot it), it keeps trying and puts both again on a new lease once etcd answers. `stop`
 * revokes the lease, so the record disappears at once.
 */
export function startAgent(options: AgentOptions): Agent {
  const { settings } = options;
  const log = options.log ?? (() => undefined);
  const docker = options.docker ?? new Docker({ socketPath: settings.dockerSocket });
  const etcd = options.etcd ?? agentEtcd(settings);
  const ownsEtcd = options.etcd === undefined;
  const id = settings.server;
  const address = settings.address ?? machineAddress();
  const startedAt = new Date();
  const version = agentVersion();
  const stopping = new AbortController();
  const signal = stopping.signal;

  let current: Lease | undefined;
  /** The lease granted last: the caretaker's records go under it as they change. */
  let granted: Lease | undefined;
  let registrations = 0;
  let dockerVersion: string | null = null;
  let dockerProblem: string | undefined;
  let resolveRegistered!: () => void;
  let rejectRegistered!: (err: Error) => void;
  const registered = new Promise<void>((resolve, reject) => {
    resolveRegistered = resolve;
    rejectRegistered = reject;
  });
  registered.catch(() => undefined);

  /** Notes the engine's state, logging only when it changes. */
  const dockerAnswer = (problem: string | undefined) => {
    if (problem === dockerProblem) return;
    if (problem !== undefined) log(`docker engine at ${settings.dockerSocket} does not answer (${problem}); containers are not counted`);
    else if (dockerProblem !== undefined) log(`docker engine at ${settings.dockerSocket} answers again`);
    dockerProblem = problem;
  };

  async function readDockerVersion(): Promise<string | null> {
    try {
      const info = await within(docker.version(), DOCKER_TIMEOUT_MS, 'docker version');
      dockerAnswer(undefined);
      return info.Version;
    } catch (err) {
      dockerAnswer(messageOf(err));
      return null;
    }
  }

  async function countContainers(): Promise<number | null> {
    try {
      const running = await within(
        docker.listContainers({ filters: { label: [STACK_LABEL], status: ['running'] } }),
        DOCKER_TIMEOUT_MS, 'docker ps',
      );
      dockerAnswer(undefined);
      return running.length;
    } catch (err) {
      dockerAnswer(messageOf(err));
      return null;
    }
  }

  async function putServer(lease: Lease): Promise<void> {
    const record = serverRecord({ id, address, version, pid: process.pid, startedAt, dockerVersion });
    await lease.put(serverKey(id)).value(recordText(record));
    if (firewall) await lease.put(keys.serverLocknet(id)).value(recordText(firewall.state()));
  }

  /** The firewall's state, under the lease, as it changes (for `quarry servers`). */
  const putLocknet = (state: LocknetState) => {
    const lease = current;
    if (!lease || registrations === 0) return;
    lease.put(keys.serverLocknet(id)).value(recordText(state)).catch(() => undefined);
  };

  /** A container's care record, under the lease; all of them are put again on each new lease. */
  const putCare = (record: CareRecord) => {
    const lease = granted;
    if (!lease) return;
    lease.put(keys.containerCare(record.stack, record.container)).value(recordText(record)).catch(() => undefined);
  };

  const deleteCare = (stack: string, container: string) => {
    etcd.delete().key(keys.containerCare(stack, container)).catch(() => undefined);
  };

  async function putCares(lease: Lease): Promise<void> {
    if (!care) return;
    await Promise.all(care.records().map((record) => lease.put(keys.containerCare(record.stack, record.container)).value(recordText(record))));
  }

  async function putLoad(lease: Lease): Promise<void> {
    if (dockerVersion === null) {
      dockerVersion = await readDockerVersion();
      // The engine answered at last: its version belongs in the record.
      if (dockerVersion !== null && registrations > 0) await putServer(lease);
    }
    const [host, containers] = await Promise.all([readHostStats(options.procRoot), countContainers()]);
    await lease.put(loadKey(id)).value(recordText(loadRecord(new Date(), host, containers)));
  }

  /** Refreshes the load until the lease is lost (its reason) or the agent stops (undefined). */
  async function keepLoading(lease: Lease, lost: Promise<Error>): Promise<string | undefined> {
    let failing: string | undefined;
    for (;;) {
      const woke = await Promise.race([delay(settings.loadIntervalMs, signal).then(() => undefined), lost]);
      if (signal.aborted) return undefined;
      if (woke instanceof Error) return messageOf(woke);
      try {
        await putLoad(lease);
        if (failing !== undefined) log('load written again');
        failing = undefined;
      } catch (err) {
        if (signal.aborted) return undefined;
        const trouble = troubleOf(err);
        if (trouble !== failing) log(`cannot write ${loadKey(id)} (${messageOf(err)}); the lease lasts while etcd answers its keep-alives`);
        failing = trouble;
      }
    }
  }

  async function run(): Promise<void> {
    let backoff = 250;
    let problem: string | undefined;
    dockerVersion = await readDockerVersion();
    while (!signal.aborted) {
      const lease = etcd.lease(settings.ttlSeconds);
      current = lease;
      const lost = new Promise<Error>((resolve) => lease.once('lost', resolve));
      let leaseId: string;
      try {
        leaseId = await lease.grant();
        granted = lease;
        await putServer(lease);
        await putLoad(lease);
        await putCares(lease);
      } catch (err) {
        lease.release();
        if (signal.aborted) break;
        const trouble = troubleOf(err);
        if (trouble !== problem) log(`cannot register at etcd ${settings.etcd.join(',')} (${messageOf(err)}); trying again until it answers`);
        problem = trouble;
        await delay(backoff, signal);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      if (signal.aborted) break;
      registrations += 1;
      backoff = 250;
      problem = undefined;
      log(`${registrations === 1 ? 'registered' : 'registered again:'} ${serverKey(id)} address ${address} ` +
        `(lease ${BigInt(leaseId).toString(16)}, ttl ${settings.ttlSeconds} s)`);
      if (registrations === 1) resolveRegistered();
      const reason = await keepLoading(lease, lost);
      if (reason === undefined || signal.aborted) break;
      log(`lease ${BigInt(leaseId).toString(16)} lost (${reason}); registering again`);
    }
  }

  const files: FileSync | undefined = settings.filesRoot === undefined
    ? undefined
    : startFileSync({
      etcd, root: settings.filesRoot, log,
      ...(settings.hostsFile !== undefined && { hostsFile: { path: settings.hostsFile, lockDir: settings.stateDir } }),
    });
  const firewall: LocknetSync | undefined = settings.locknet === undefined
    ? undefined
    : startLocknetSync({ etcd, apply: locknetApplier(settings.locknet.public), publicPorts: settings.locknet.public, log, onState: putLocknet });
  // The caretaker: crashed containers restarted by their policy, each one's record in etcd.
  const care: Caretaker | undefined = settings.caretaker === false
    ? undefined
    : startCaretaker({
      docker, server: id, stateFile: join(settings.stateDir, `caretaker-${id}.json`), log,
      report: putCare, forget: deleteCare,
      ...(options.careStack !== undefined && { stack: options.careStack }),
    });
  // The producers of the element containers here follow their consumers' endpoints in etcd.
  const relay: PeerRelay | undefined = settings.caretaker === false ? undefined : startPeerRelay({ etcd, docker, log });
  // Each element instance's figures, about once a second, under the lease (issue 17).
  const metrics: MetricsRelay | undefined = settings.metrics === false
    ? undefined
    : startMetricsRelay({
      etcd, docker, server: id, log,
      put: (key, value) => granted?.put(key).value(value).then(() => undefined),
      ...(options.careStack !== undefined && { cares: (stack: string) => stack === options.careStack }),
    });
  log(`agent ${version} for server ${id} (pid ${process.pid}): etcd ${settings.etcd.join(',')}, ` +
    `docker ${settings.dockerSocket}, ttl ${settings.ttlSeconds} s, load every ${settings.loadIntervalMs} ms` +
    `${settings.filesRoot === undefined ? '' : `, files into ${settings.filesRoot}`}` +
    `${settings.hostsFile === undefined ? '' : `, hosts into ${settings.hostsFile}`}` +
    `${settings.locknet === undefined ? '' : `, locknet on (public tcp ${settings.locknet.public.join(',')})`}` +
    `${settings.tls === undefined ? '' : ', etcd over TLS'}` +
    `${care === undefined ? ', caretaker off' : `, caretaker on (history in ${settings.stateDir})`}` +
    `${metrics === undefined ? ', metrics off' : ', metrics on'}`);
  const running = run().catch((err: unknown) => {
    log(`internal error: ${(err as Error)?.stack ?? String(err)}`);
  });

  let stopped: Promise<void> | undefined;
  return {
    registered,
    registrations: () => registrations,
    stop() {
      stopped ??= (async () => {
        stopping.abort();
        rejectRegistered(new Error(`the agent for ${id} stopped before it registered`));
        // The containers stay as they are; their records go with the lease.
        await within(care?.stop() ?? Promise.resolve(), REVOKE_TIMEOUT_MS, 'caretaker stop').catch(() => undefined);
        await within(relay?.stop() ?? Promise.resolve(), REVOKE_TIMEOUT_MS, 'peer relay stop').catch(() => undefined);
        await within(metrics?.stop() ?? Promise.resolve(), REVOKE_TIMEOUT_MS, 'metrics relay stop').catch(() => undefined);
        const lease = current;
        if (lease) {
          try {
            await within(lease.revoke(), REVOKE_TIMEOUT_MS, 'etcd lease revoke');
            log(`stopped: lease revoked, ${serverKey(id)} removed`);
          } catch (err) {
            lease.release();
            log(`stopped: cannot revoke the lease (${messageOf(err)}); ${serverKey(id)} goes when it expires (${settings.ttlSeconds} s)`);
          }
        }
        await within(running, REVOKE_TIMEOUT_MS, 'agent loop').catch(() => undefined);
        await files?.stop();
        // The firewall stays as it is: an agent that stops (or dies) leaves its rules in force.
        await firewall?.stop();
        if (ownsEtcd) etcd.close();
      })();
      return stopped;
    },
  };
}
