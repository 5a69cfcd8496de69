import { join } from 'node:path';
import type Docker from 'dockerode';
import { imageBuilds, type UnitDefinition, type ImageNeed } from '../plan/index.js';
import { buildElementImage, ensureRuntimeImage } from './element-image.js';
import { buildImage, hasImage } from './images.js';

/** An image built from a unit's folder. */
export type ImageBuild = Extract<ImageNeed, { how: 'dockerfile' | 'element' }>;
/** An image no unit builds: it must be on the engine. */
export type PresentImage = Extract<ImageNeed, { how: 'present' }>;

/** How building a stack's images is told (a push's progress, `quarry run`'s lines), and what a missing image is. */
export interface UnitImagesReport {
  /** Each line of making the runtime image (said only when it is missing and made). */
  runtime?(line: string): void;
  /** A build starts. */
  building(build: ImageBuild): void;
  /** Each line of docker's output for that build. */
  line(build: ImageBuild, line: string): void;
  /** A build is done: `cached` when its tag was there already (tags are content digests). */
  built(build: ImageBuild, result: 'built' | 'cached', ms: number): void;
  /** The error to throw for an image that no unit builds and the engine does not have. */
  missing(image: PresentImage): Error;
  /** The error to throw for a build stopped at `limits.timeoutMs`; default: the build's own error. */
  timedOut?(build: ImageBuild, timeoutMs: number): Error;
}

/** Limits on each build of `buildUnitImages`. */
export interface BuildLimits {
  /** A build that runs longer is stopped (its request aborted). */
  timeoutMs?: number;
  /** The memory limit of the builds' steps, in bytes (no swap beyond it). */
  memory?: number;
}

/**
 * Builds every image the units need under `root` (their build folders are relative to it): the
 * runtime image first when any unit builds, then each image once, an element class without a
 * Dockerfile on the runtime image (`buildElementImage`), anything else from its Dockerfile
 * (`buildImage`); an image no unit builds must be on the engine already. Cached by content tag.
 */
export async function buildUnitImages(docker: Docker, root: string, units: readonly UnitDefinition[], report: UnitImagesReport, limits: BuildLimits = {}): Promise<void> {
  const { runtime, images } = imageBuilds(units);
  if (runtime) await ensureRuntimeImage(docker, report.runtime && ((line) => report.runtime!(line)));
  for (const need of images) {
    if (need.how === 'present') {
      if (!(await hasImage(docker, need.image))) throw report.missing(need);
      continue;
    }
    const started = Date.now();
    report.building(need);
    const options = { folder: join(root, need.folder), tag: need.image, onLine: (line: string) => report.line(need, line) };
    const abort = new AbortController();
    const timer = limits.timeoutMs === undefined ? undefined : setTimeout(() => abort.abort(), limits.timeoutMs);
    let result: 'built' | 'cached';
    try {
      const held = { ...options, abortSignal: abort.signal, ...(limits.memory !== undefined && { memory: limits.memory }) };
      result = need.how === 'element'
        ? await buildElementImage(docker, { ...held, ...(need.main !== undefined && { main: need.main }) })
        : await buildImage(docker, held);
    } catch (err) {
      if (abort.signal.aborted && report.timedOut) throw report.timedOut(need, limits.timeoutMs!);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    report.built(need, result, Date.now() - started);
  }
}
