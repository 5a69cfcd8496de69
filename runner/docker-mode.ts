import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import {
  buildUnitImages, LABELS, listContainers, networkName, removeContainer, startContainer, waitHealthy,
  type ImageBuild, type RunningContainer,
} from '../launcher/index.js';
import type { DesiredUnit } from '../plan/index.js';
import { AlreadyRunningError, CannotRunError } from './errors.js';

/** The `quarry.release` label of containers a local run starts (HQ's carry `v1`, `v2`, …). */
export const RUN_RELEASE = 'run';

/**
 * Builds every image the units need (runtime image first), each cached by its content tag
 * (the launcher's `buildUnitImages`), telling `quarry run`'s user one line per image.
 */
export async function buildRunImages(docker: Docker, dir: string, units: DesiredUnit[], say: (line: string) => void): Promise<void> {
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

/** One running container of the run, with its output followed. */
export class UnitContainer {
  private constructor(readonly docker: Docker, readonly container: RunningContainer, private readonly logs: NodeJS.ReadableStream) {}

  static async start(
    docker: Docker,
    spec: Parameters<typeof startContainer>[1],
    health: { port?: number; path?: string },
    write: (chunk?: string) => void,
  ): Promise<UnitContainer> {
    const container = await startContainer(docker, { ...spec, release: RUN_RELEASE });
    const raw = (await docker.getContainer(container.id).logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream;
    const text = new PassThrough();
    docker.modem.demuxStream(raw, text, text);
    text.setEncoding('utf8');
    let held = '';
    text.on('data', (chunk: string) => {
      held += chunk;
      const at = held.lastIndexOf('\n');
      if (at < 0) return;
      const lines = held.slice(0, at + 1).split('\n').filter((l) => !l.startsWith('{"quarry":"stats"'));
      held = held.slice(at + 1);
      write(lines.map((l) => (l.startsWith('{"quarry":"ready"') ? 'ready' : l)).join('\n'));
    });
    raw.on('end', () => { if (held) write(`${held}\n`); write(); });
    const unit = new UnitContainer(docker, container, raw);
    try {
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

  async stop(graceMs: number): Promise<void> {
    await removeContainer(this.docker, this.container.id, Math.ceil(graceMs / 1000));
    (this.logs as unknown as { destroy?: () => void }).destroy?.();
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
