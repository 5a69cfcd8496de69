import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import {
  buildUnitImages, LABELS, listContainers, networkName, removeContainer, startCaretaker, startContainer, waitHealthy,
  type Caretaker, type CareRecord, type ImageBuild, type RunningContainer,
} from '../launcher/index.js';
import type { UnitDefinition } from '../plan/index.js';
import { AlreadyRunningError, CannotRunError } from './errors.js';

/** The `quarry.release` label of containers a local run starts (HQ's carry `v1`, `v2`, …). */
export const RUN_RELEASE = 'run';

/**
 * Builds every image the units need (runtime image first), each cached by its content tag
 * (the launcher's `buildUnitImages`), telling `quarry run`'s user one line per image.
 */
export async function buildRunImages(docker: Docker, dir: string, units: UnitDefinition[], say: (line: string) => void): Promise<void> {
  const what = (build: ImageBuild) => (build.unit.kind === 'element' ? `element class ${build.unit.build?.class}` : build.unit.name);
  await buildUnitImages(docker, dir, units, {
    runtime: (line) => { if (line.startsWith('making')) say(line); },
    building: (build) => say(`building ${what(build)} (${build.image}) …`),
    line: (_build, line) => { if (/^Step \d+\/\d+/.test(line)) say(`  ${line}`); },
    built: (build, result, ms) => say(result === 'cached' ? `  ${what(build)}: unchanged, built before` : `  ${what(build)}: built in ${(ms / 1000).toFixed(1)} s`),
    missing: ({ unit, image }) => new CannotRunError(`${unit.name}: the image ${image} is not on this machine, and there is no registry to pull it from; build it (docker build -t ${image} …) or give the node a build folder`),
  });
}

/**
 * Containers of this stack left on the engine: those of a local run that died are removed;
 * any other (HQ runs this stack on this engine) stops the run, which would clash with them.
 */
export async function clearLeftovers(docker: Docker, stack: string, say: (line: string) => void): Promise<void> {
  const found = await listContainers(docker, stack);
  const foreign = found.filter((c) => c.release !== RUN_RELEASE);
  if (foreign.length > 0) {
    throw new AlreadyRunningError(`stack ${stack} has containers on this docker engine that quarry run did not start (${foreign.map((c) => c.name).join(', ')}); ` +
      'HQ runs it here? Stop those first, or run with --processes');
  }
  if (found.length > 0) say(`removing ${found.length} container${found.length === 1 ? '' : 's'} left by a run of ${stack} that did not stop cleanly`);
  for (const c of found) await removeContainer(docker, c.id, 0);
}

/** One running container of the run, with its output followed (again after each restart). */
export class UnitContainer {
  private logs: NodeJS.ReadableStream | undefined;
  private stopped = false;
  private ip: string | undefined;

  private constructor(readonly docker: Docker, readonly container: RunningContainer, private readonly write: (chunk?: string) => void) {
    this.ip = container.ip;
  }

  static async start(
    docker: Docker,
    spec: Parameters<typeof startContainer>[1],
    health: { port?: number; path?: string },
    write: (chunk?: string) => void,
  ): Promise<UnitContainer> {
    const container = await startContainer(docker, { ...spec, release: RUN_RELEASE });
    const unit = new UnitContainer(docker, container, write);
    try {
      await unit.follow();
      await waitHealthy(docker, container.id, {
        ...(health.port !== undefined && { port: health.port }),
        ...(health.path !== undefined && { path: health.path }),
        timeoutMs: 60_000,
        settleMs: 1000,
      });
    } catch (err) {
      await unit.stop(0);
      throw err;
    }
    return unit;
  }

  /**
   * Follows the container's output (docker ends a follow when the container stops): from its
   * start, or, after a restart, from `sinceMs` (its death) on, so no line is shown twice.
   */
  async follow(sinceMs?: number): Promise<void> {
    if (this.stopped) return;
    (this.logs as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    const options = { follow: true as const, stdout: true, stderr: true, ...(sinceMs !== undefined && { since: (sinceMs / 1000).toFixed(3) as unknown as number }) };
    const raw = (await this.docker.getContainer(this.container.id).logs(options)) as unknown as NodeJS.ReadableStream;
    this.logs = raw;
    const text = new PassThrough();
    this.docker.modem.demuxStream(raw, text, text);
    text.setEncoding('utf8');
    let held = '';
    text.on('data', (chunk: string) => {
      held += chunk;
      const at = held.lastIndexOf('\n');
      if (at < 0) return;
      const lines = held.slice(0, at + 1).split('\n').filter((l) => !l.startsWith('{"quarry":"stats"'));
      held = held.slice(at + 1);
      this.write(lines.map((l) => (l.startsWith('{"quarry":"ready"') ? 'ready' : l)).join('\n'));
    });
    raw.on('end', () => { if (held) this.write(`${held}\n`); held = ''; this.write(); });
  }

  /**
   * Its address on the stack's network (where the runner reaches its control socket); looked up
   * again with `refresh` (docker may give a container that restarted another one).
   */
  async address(refresh = false): Promise<string | undefined> {
    if (refresh || this.ip === undefined) {
      try {
        const info = await this.docker.getContainer(this.container.id).inspect();
        this.ip = Object.values(info.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress || undefined;
      } catch {
        this.ip = undefined;
      }
    }
    return this.ip;
  }

  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    await removeContainer(this.docker, this.container.id, Math.ceil(graceMs / 1000));
    (this.logs as unknown as { destroy?: () => void } | undefined)?.destroy?.();
  }
}

/** Removes whatever of the run is left on the engine: its containers, then its network. */
export async function sweepStack(docker: Docker, stack: string): Promise<void> {
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABELS.stack}=${stack}`, `${LABELS.release}=${RUN_RELEASE}`] } });
  for (const c of left) await removeContainer(docker, c.Id, 0);
  const others = await listContainers(docker, stack);
  if (others.length === 0) {
    try {
      await docker.getNetwork(networkName(stack)).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
}

/** What the run's caretaker tells the runner about one container: a line for its unit, and whether it failed. */
export interface CareLine {
  /** The container's `<stack>.<name>.<n>`. */
  container: string;
  text: string;
  failed?: string;
  /** It was restarted after it died at this time (ms): its output is to be followed again from then. */
  restartedAfter?: number;
}

/**
 * The caretaker of the run's containers (the launcher's, as on every server: containers are
 * made with no docker restart policy, so nothing else restarts them): it restarts a container
 * that dies by its unit's `quarry.restart` policy and gives it up as failed after too many
 * deaths. Each change of a container's record becomes one line for its unit: its exit and the
 * restart, the back-off it waits, or that it failed. Its own problems (the engine away) go to `say`.
 */
export async function startRunCaretaker(docker: Docker, stack: string, tell: (line: CareLine) => void, say: (line: string) => void): Promise<Caretaker> {
  const last = new Map<string, CareRecord>();
  const caretaker = startCaretaker({
    docker, server: 'local', stack,
    report: (record) => {
      const before = last.get(record.container);
      last.set(record.container, record);
      const line = careLine(before, record, Date.now());
      if (line) tell(line);
    },
    forget: (_stack, container) => { last.delete(container); },
    // Deaths and restarts are said by the records' lines; the rest (the engine away and back) as it is.
    log: (line) => { if (!/ died \(|could not be started/.test(line)) say(line); },
  });
  await caretaker.ready;
  return caretaker;
}

/** The line a change of a container's care record makes, if it says anything new. */
export function careLine(before: CareRecord | undefined, record: CareRecord, now: number): CareLine | undefined {
  const exit = record.lastExit ? `exited (code ${record.lastExit.code}${record.lastExit.oom ? ', out of memory' : ''})` : 'exited';
  const container = record.container;
  if (record.state === 'failed') {
    if (before?.state === 'failed') return undefined;
    const reason = record.reason ?? 'it died too often';
    return { container, text: `${exit}; failed: ${reason}; it stays stopped, the rest of the stack keeps running`, failed: reason };
  }
  if (record.state === 'backoff') {
    if (before?.state === 'backoff' && before.nextRestartAt === record.nextRestartAt) return undefined;
    const wait = record.nextRestartAt ? Math.max(0, Date.parse(record.nextRestartAt) - now) : 0;
    return { container, text: `${exit}; restarting in ${(wait / 1000).toFixed(1)} s (restarts so far: ${record.restarts})` };
  }
  if (record.restarts > (before?.restarts ?? 0)) {
    const died = record.lastExit ? Date.parse(record.lastExit.at) : Number.NaN;
    return { container, text: `${exit}; restarted (restart ${record.restarts})`, restartedAfter: Number.isFinite(died) ? died : now };
  }
  return undefined;
}
