import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { atomicWriteAsync, readIfExists, removeStaleTemporaries } from '../home/index.js';
import { parseRestartLabel, restartDecision, type RestartPolicy } from '../plan/index.js';
import { restartedByDocker } from './containers.js';
import type { CareRecord } from './etcd-keys.js';
import { LABELS } from './labels.js';

/**
 * The caretaker of one docker engine's quarry containers: it restarts a container that crashed,
 * in place (the same container, so the same id and published host ports), following the
 * container's `quarry.restart` policy (plan/restart.ts), and marks it failed when it crashes
 * too often. A server's agent runs one; so does HQ in small mode.
 *
 * A crash is a `die` with no `kill` since the container's last start: docker's stop and kill
 * (how HQ removes a container) send `kill` first, a process that exits or is SIGKILLed by
 * anyone else gives only `die`.
 */
export interface CaretakerOptions {
  /** The engine whose quarry containers (label quarry.stack) it looks after. */
  docker: Docker;
  /** The server id put in records ('local' in small mode). */
  server: string;
  /** Only this stack's containers (tests); default: every quarry container of the engine. */
  stack?: string;
  /** Only the stacks this says yes to (HQ in small mode: its own, not those of `quarry run` on the same engine). */
  cares?: (stack: string) => boolean;
  /**
   * Where restart history survives the caretaker's process being killed (written with home/'s
   * durable write); none: memory only.
   */
  stateFile?: string;
  /** Every change of a container's record. */
  report: (record: CareRecord) => void;
  /** The container was removed (docker 'destroy'): its record is gone. */
  forget: (stack: string, container: string) => void;
  /** One line per event (a crash, a restart given up, the engine away or back); never one per retry. */
  log?: (line: string) => void;
  /** The clock of restart decisions and records; default Date.now. */
  now?: () => number;
}

export interface Caretaker {
  /** Resolves once the first scan is done (every running container reported, crashed ones decided on); rejects if stopped before. */
  readonly ready: Promise<void>;
  /** The record of every container it knows of. */
  records(): CareRecord[];
  /** Ends the event stream and the back-off timers; containers are left as they are. */
  stop(): Promise<void>;
}

/** What the state file keeps of one container (by id). */
interface Kept {
  name: string;
  stack: string;
  unit: string;
  /** The times (ms) of the restarts decided on, within the policy's window. */
  restartTimes: number[];
  /** Restarts made. */
  restarts: number;
  /** Why it failed; absent: not failed. */
  failed?: string;
  lastExit?: { code: number; at: string; oom?: boolean };
  /** docker's `State.FinishedAt` of the last death decided on: the same death is never decided twice. */
  death?: string;
  /** A restart decided for `death` and not made yet (ms). */
  nextRestartAt?: number;
}

interface StateFile {
  version: 1;
  /** When the caretaker last looked (ms): events since then are replayed at its next start. */
  checkpoint?: number;
  containers: Record<string, Kept>;
}

interface Watched {
  id: string;
  kept: Kept;
  policy: RestartPolicy;
  /** An older quarry's container: docker's restart policy restarts it; only counted. */
  byDocker: boolean;
  /** Seen running (or decided on): it has a record. */
  known: boolean;
  timer?: NodeJS.Timeout;
}

interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  id?: string;
  time?: number;
  timeNano?: number;
}

const WATCHED_ACTIONS = ['start', 'kill', 'oom', 'die', 'destroy'];
const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 5000;

function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.trim().slice(0, 200);
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

function formatWindow(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

function isoOf(dockerTime: string | undefined, fallback: number): string {
  const ms = dockerTime ? Date.parse(dockerTime) : Number.NaN;
  return new Date(Number.isFinite(ms) && ms > 0 ? ms : fallback).toISOString();
}

/** docker's "never": a container never started or never finished has this time. */
function isSet(dockerTime: string | undefined): dockerTime is string {
  const ms = dockerTime ? Date.parse(dockerTime) : Number.NaN;
  return Number.isFinite(ms) && ms > 0;
}

/** Splits docker's stream of JSON lines into events. */
function eventLines(onEvent: (event: DockerEvent) => void): (chunk: Buffer | string) => void {
  let rest = '';
  return (chunk) => {
    rest += chunk.toString();
    const lines = rest.split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        onEvent(JSON.parse(line) as DockerEvent);
      } catch {
        // not an event: ignored
      }
    }
  };
}

export function startCaretaker(options: CaretakerOptions): Caretaker {
  const { docker, server } = options;
  const log = options.log ?? (() => undefined);
  const now = options.now ?? Date.now;
  const labelFilter = options.stack === undefined ? LABELS.stack : `${LABELS.stack}=${options.stack}`;
  const filters = { type: ['container'], label: [labelFilter], event: WATCHED_ACTIONS };

  const watched = new Map<string, Watched>();
  /** Containers with a `kill` since their last start: their next `die` is not a crash. */
  const killed = new Set<string>();
  /** Containers with an `oom` since their last start. */
  const oomed = new Set<string>();
  const reported = new Map<string, string>();
  let checkpoint: number | undefined;
  let stopped = false;
  let stream: Readable | undefined;
  let wakeRetry: (() => void) | undefined;

  let resolveReady!: () => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);

  // One thing at a time: events, scans and restarts, in order.
  let queue: Promise<void> = Promise.resolve();
  // A job's error is logged, except a scan's: the stream's loop says why it tries again.
  const enqueue = (what: string | undefined, job: () => Promise<void>): Promise<void> => {
    const run = queue.then(async () => {
      if (stopped) return;
      await job();
    });
    queue = run.catch((err: unknown) => {
      if (!stopped && what !== undefined) log(`caretaker: ${what}: ${messageOf(err)}`);
    });
    return run;
  };

  // ── the state file ────────────────────────────────────────────────────────────────────
  let saving: Promise<void> | undefined;
  let dirty = false;
  let saveProblem: string | undefined;
  const stateText = (): string => {
    // Entries of the file not seen yet (in the middle of the first scan) are kept too.
    const containers: Record<string, Kept> = { ...fromFile };
    for (const [id, w] of watched) containers[id] = w.kept;
    const file: StateFile = { version: 1, ...(checkpoint !== undefined && { checkpoint }), containers };
    return `${JSON.stringify(file)}\n`;
  };
  /** Writes the state (coalescing writes asked for meanwhile); resolves once this state is on disk. */
  const save = (): Promise<void> => {
    const path = options.stateFile;
    if (path === undefined) return Promise.resolve();
    dirty = true;
    saving ??= (async () => {
      while (dirty) {
        dirty = false;
        try {
          await mkdir(dirname(path), { recursive: true });
          await atomicWriteAsync(path, stateText(), 0o600);
          if (saveProblem !== undefined) log(`caretaker: restart history written to ${path} again`);
          saveProblem = undefined;
        } catch (err) {
          const problem = messageOf(err);
          if (problem !== saveProblem) log(`caretaker: cannot write restart history to ${path} (${problem}); keeping it in memory`);
          saveProblem = problem;
        }
      }
    })().finally(() => { saving = undefined; });
    return saving;
  };

  async function load(): Promise<Record<string, Kept>> {
    const path = options.stateFile;
    if (path === undefined) return {};
    await removeStaleTemporaries(path);
    let text: string | undefined;
    try {
      text = await readIfExists(path);
    } catch (err) {
      log(`caretaker: cannot read restart history ${path} (${messageOf(err)}); starting without it`);
      return {};
    }
    if (text === undefined) return {};
    try {
      const file = JSON.parse(text) as StateFile;
      if (file?.version !== 1 || typeof file.containers !== 'object' || file.containers === null) throw new Error('not a caretaker state file');
      if (typeof file.checkpoint === 'number') checkpoint = file.checkpoint;
      const out: Record<string, Kept> = {};
      for (const [id, k] of Object.entries(file.containers)) {
        if (!k || typeof k.name !== 'string' || !Array.isArray(k.restartTimes)) continue;
        out[id] = { ...k, restartTimes: k.restartTimes.filter((t) => typeof t === 'number'), restarts: Number(k.restarts) || 0 };
      }
      return out;
    } catch (err) {
      log(`caretaker: restart history ${path} is unreadable (${messageOf(err)}); starting without it`);
      return {};
    }
  }
  /** Kept from the state file, by id, until the container is seen. */
  let fromFile: Record<string, Kept> = {};

  // ── records ───────────────────────────────────────────────────────────────────────────
  function recordOf(w: Watched): CareRecord {
    const k = w.kept;
    const state: CareRecord['state'] = k.failed !== undefined ? 'failed' : k.nextRestartAt !== undefined ? 'backoff' : 'running';
    return {
      container: k.name, stack: k.stack, unit: k.unit, server, state, restarts: k.restarts,
      ...(k.lastExit && { lastExit: k.lastExit }),
      ...(state === 'backoff' && { nextRestartAt: new Date(k.nextRestartAt!).toISOString() }),
      ...(state === 'failed' && { reason: k.failed }),
    };
  }

  function report(w: Watched): void {
    if (!w.known || stopped) return;
    const record = recordOf(w);
    const text = JSON.stringify(record);
    if (reported.get(w.id) === text) return;
    reported.set(w.id, text);
    try {
      options.report(record);
    } catch (err) {
      log(`caretaker: reporting ${record.container}: ${messageOf(err)}`);
    }
  }

  function forget(id: string): void {
    const w = watched.get(id);
    killed.delete(id);
    oomed.delete(id);
    if (!w) return;
    if (w.timer) clearTimeout(w.timer);
    watched.delete(id);
    const had = reported.delete(id);
    if (had && !stopped) {
      try {
        options.forget(w.kept.stack, w.kept.name);
      } catch (err) {
        log(`caretaker: forgetting ${w.kept.name}: ${messageOf(err)}`);
      }
    }
  }

  /** The container's entry, made (from the state file's, or new) the first time it is seen. */
  function watch(info: Docker.ContainerInspectInfo): Watched {
    const labels = info.Config.Labels ?? {};
    let w = watched.get(info.Id);
    if (!w) {
      const kept: Kept = fromFile[info.Id] ?? {
        name: info.Name.replace(/^\//, ''), stack: labels[LABELS.stack] ?? '', unit: labels[LABELS.name] ?? '',
        restartTimes: [], restarts: 0,
      };
      delete fromFile[info.Id];
      w = { id: info.Id, kept, policy: parseRestartLabel(labels[LABELS.restart]), byDocker: restartedByDocker(info), known: false };
      watched.set(info.Id, w);
    }
    return w;
  }

  async function inspect(id: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await docker.getContainer(id).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  // ── what happens to a container ───────────────────────────────────────────────────────
  /** A `start` event (`fromEvent`: a kill before it no longer counts), or a running container seen by a scan. */
  async function started(id: string, fromEvent: boolean): Promise<void> {
    if (fromEvent) {
      killed.delete(id);
      oomed.delete(id);
    }
    const info = await inspect(id);
    if (!info) return;
    const w = watch(info);
    w.known = true;
    if (w.byDocker) w.kept.restarts = info.RestartCount;
    if (w.timer) {
      clearTimeout(w.timer);
      w.timer = undefined;
    }
    const changed = w.kept.nextRestartAt !== undefined || w.kept.failed !== undefined;
    if (info.State.Running) {
      // Started by someone else while in back-off, or after it failed: it is running again.
      delete w.kept.nextRestartAt;
      delete w.kept.failed;
    }
    if (changed || w.byDocker) await save();
    report(w);
  }

  async function died(id: string, exitCode: string | undefined): Promise<void> {
    const info = await inspect(id);
    if (!info) return;
    const w = watch(info);
    if (info.State.Running || info.State.Restarting && !w.byDocker || info.State.Status === 'removing') return;
    const state = info.State;
    const death = state.FinishedAt;
    const code = exitCode !== undefined && /^-?\d+$/.test(exitCode) ? Number(exitCode) : state.ExitCode;
    const oom = oomed.has(id) || state.OOMKilled === true;
    const exit = { code, at: isoOf(death, now()), ...(oom && { oom: true }) };

    if (w.byDocker) {
      // An older quarry's container: docker restarts it; the record only follows.
      w.known = true;
      w.kept.lastExit = exit;
      w.kept.restarts = info.RestartCount;
      await save();
      report(w);
      return;
    }
    if (killed.has(id)) {
      // Stopped or killed through docker (HQ removing it): not a crash.
      if (w.kept.death !== death) {
        w.kept.lastExit = exit;
        w.kept.death = death;
        delete w.kept.nextRestartAt;
        await save();
      }
      return;
    }
    w.known = true;
    if (w.kept.death === death) {
      // Decided on already (before a reconnect, or by the caretaker before this one).
      if (w.kept.nextRestartAt !== undefined) schedule(w, w.kept.nextRestartAt);
      report(w);
      return;
    }
    w.kept.death = death;
    w.kept.lastExit = exit;
    const why = `exit ${code}${oom ? ', out of memory' : ''}`;
    await decide(w, `${w.kept.name} died (${why})`);
  }

  /** Restart (at once or later) or fail, by the policy; `what` starts the log line. */
  async function decide(w: Watched, what: string): Promise<void> {
    const at = now();
    const p = w.policy;
    w.kept.restartTimes = w.kept.restartTimes.filter((t) => t > at - p.intervalMs);
    const decision = restartDecision(w.kept.restartTimes, p, at);
    if (decision.action === 'fail') {
      w.kept.failed = decision.reason;
      delete w.kept.nextRestartAt;
      await save();
      log(`caretaker: ${what}; it failed: ${decision.reason}. It is left stopped until a deploy replaces it`);
      report(w);
      return;
    }
    const restartAt = at + decision.delayMs;
    w.kept.restartTimes.push(restartAt);
    w.kept.nextRestartAt = restartAt;
    delete w.kept.failed;
    await save();
    const of = `restart ${decision.attempt} of ${p.attempts} within ${formatWindow(p.intervalMs)}`;
    log(`caretaker: ${what}; restarting it ${decision.delayMs === 0 ? 'at once' : `in ${formatDelay(decision.delayMs)}`} (${of})`);
    if (decision.delayMs > 0) report(w);
    schedule(w, restartAt);
  }

  function schedule(w: Watched, at: number): void {
    if (w.timer || stopped) return;
    const wait = Math.max(0, at - now());
    const go = () => {
      w.timer = undefined;
      void enqueue(`restarting ${w.kept.name}`, () => restart(w));
    };
    if (wait === 0) go();
    else w.timer = setTimeout(go, wait);
  }

  async function restart(w: Watched): Promise<void> {
    if (watched.get(w.id) !== w || w.kept.nextRestartAt === undefined) return;
    const info = await inspect(w.id);
    if (!info) return; // removed meanwhile: its destroy event forgets it
    if (info.State.Running || info.State.FinishedAt !== w.kept.death) {
      // Started by someone else meanwhile (a later death is decided on by its own event).
      delete w.kept.nextRestartAt;
      await save();
      report(w);
      return;
    }
    if (stopped) return;
    try {
      await docker.getContainer(w.id).start();
    } catch (err) {
      const status = statusOf(err);
      if (status === 304 || status === 404) {
        delete w.kept.nextRestartAt;
        await save();
        report(w);
        return;
      }
      delete w.kept.nextRestartAt;
      // It could not start: that counts as another death, decided on by the policy.
      await decide(w, `${w.kept.name} could not be started (${messageOf(err)})`);
      return;
    }
    killed.delete(w.id);
    oomed.delete(w.id);
    w.kept.restarts += 1;
    delete w.kept.nextRestartAt;
    await save();
    report(w);
  }

  // ── scan: what happened while the caretaker was not looking ───────────────────────────
  async function replay(since: number, until: number): Promise<DockerEvent[]> {
    const events: DockerEvent[] = [];
    const replayed = (await docker.getEvents({ since: since / 1000, until: until / 1000, filters: JSON.stringify(filters) })) as Readable;
    const take = eventLines((e) => events.push(e));
    await new Promise<void>((resolve, reject) => {
      replayed.on('data', take);
      replayed.once('end', resolve);
      replayed.once('close', resolve);
      replayed.once('error', reject);
    });
    return events;
  }

  async function scan(): Promise<void> {
    const scannedAt = Date.now();
    const listed = (await docker.listContainers({ all: true, filters: { label: [labelFilter] } }))
      .filter((c) => !options.cares || options.cares(c.Labels?.[LABELS.stack] ?? ''));
    const infos = (await Promise.all(listed.map((c) => inspect(c.Id)))).filter((i): i is Docker.ContainerInspectInfo => i !== undefined);
    const exited = infos.filter((i) => !i.State.Running && i.State.Status !== 'created' && isSet(i.State.StartedAt));

    // docker keeps its recent events in memory: the kills since each exited container's last
    // start tell a stop from a crash. After the engine restarted, there are none: every exited
    // container counts as crashed (the engine's own shutdown stopped them).
    const starts = exited.map((i) => Date.parse(i.State.StartedAt));
    // The last minute at least: a running container being stopped right now had its kill then.
    const since = Math.min(checkpoint ?? Number.POSITIVE_INFINITY, scannedAt - 60_000, ...starts);
    for (const e of await replay(since - 1000, scannedAt)) {
      const id = e.Actor?.ID ?? e.id;
      if (!id) continue;
      if (e.Action === 'start') { killed.delete(id); oomed.delete(id); }
      else if (e.Action === 'kill') killed.add(id);
      else if (e.Action === 'oom') oomed.add(id);
    }

    const present = new Set(infos.map((i) => i.Id));
    for (const id of [...watched.keys()]) if (!present.has(id)) forget(id);
    for (const id of Object.keys(fromFile)) if (!present.has(id)) delete fromFile[id];
    for (const set of [killed, oomed]) for (const id of [...set]) if (!present.has(id)) set.delete(id);

    for (const info of infos) {
      if (info.State.Running) {
        await started(info.Id, false);
      } else if (exited.includes(info)) {
        await died(info.Id, undefined);
      }
    }
    checkpoint = scannedAt;
    await save();
  }

  // ── the event stream ──────────────────────────────────────────────────────────────────
  function onEvent(e: DockerEvent): void {
    const id = e.Actor?.ID ?? e.id;
    if (!id || (e.Type !== undefined && e.Type !== 'container')) return;
    if (options.cares && !options.cares(e.Actor?.Attributes?.[LABELS.stack] ?? '')) return;
    // Everything goes through the queue, so that a kill is never taken before the start ahead of it.
    switch (e.Action) {
      case 'kill': void enqueue(undefined, async () => { killed.add(id); }); break;
      case 'oom': void enqueue(undefined, async () => { oomed.add(id); }); break;
      case 'start': void enqueue(`start of ${id.slice(0, 12)}`, () => started(id, true)); break;
      case 'die': {
        const code = e.Actor?.Attributes?.exitCode;
        void enqueue(`death of ${id.slice(0, 12)}`, () => died(id, code));
        break;
      }
      case 'destroy': void enqueue(`removal of ${id.slice(0, 12)}`, async () => { forget(id); await save(); }); break;
      default: break;
    }
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { wakeRetry = undefined; resolve(); }, ms);
      wakeRetry = () => { clearTimeout(timer); wakeRetry = undefined; resolve(); };
    });
  }

  async function follow(): Promise<void> {
    fromFile = await load();
    let backoff = FIRST_RETRY_MS;
    let trouble: string | undefined;
    let connections = 0;
    while (!stopped) {
      let ended: Promise<string>;
      try {
        const s = (await docker.getEvents({ filters: JSON.stringify(filters) })) as Readable;
        if (stopped) { s.destroy(); break; }
        stream = s;
        ended = new Promise<string>((resolve) => {
          s.once('end', () => resolve('the engine ended the event stream'));
          s.once('close', () => resolve('the event stream closed'));
          s.once('error', (err) => resolve(messageOf(err)));
        });
        // The scan goes first in the queue; the events streamed meanwhile wait behind it.
        const scanned = enqueue(undefined, scan);
        s.on('data', eventLines(onEvent));
        const endedFirst = await Promise.race([scanned.then(() => undefined), ended]);
        if (endedFirst !== undefined) throw new Error(endedFirst);
      } catch (err) {
        stream?.destroy();
        stream = undefined;
        if (stopped) break;
        const problem = messageOf(err);
        if (problem !== trouble) log(`caretaker: cannot follow docker's events (${problem}); trying again until the engine answers`);
        trouble = problem;
        await pause(backoff);
        backoff = Math.min(backoff * 2, LAST_RETRY_MS);
        continue;
      }
      connections += 1;
      if (connections === 1) resolveReady();
      if (trouble !== undefined) log('caretaker: following docker\'s events again');
      trouble = undefined;
      backoff = FIRST_RETRY_MS;
      const why = await ended;
      stream = undefined;
      if (stopped) break;
      trouble = why;
      log(`caretaker: docker's events stopped (${why}); following them again when the engine answers`);
      await pause(backoff);
    }
  }

  const following = follow().catch((err: unknown) => {
    log(`caretaker: internal error: ${(err as Error)?.stack ?? String(err)}`);
  });

  let stopping: Promise<void> | undefined;
  return {
    ready,
    records: () => [...watched.values()].filter((w) => w.known).map(recordOf),
    stop() {
      stopping ??= (async () => {
        stopped = true;
        rejectReady(new Error('the caretaker stopped before it had looked at the containers'));
        stream?.destroy();
        wakeRetry?.();
        for (const w of watched.values()) {
          if (w.timer) clearTimeout(w.timer);
          w.timer = undefined;
        }
        await following;
        await queue;
        await saving;
      })();
      return stopping;
    },
  };
}
