import { lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type Docker from 'dockerode';
import { ImageBuildError } from './errors.js';

export async function hasImage(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/**
 * Every entry under a folder, relative to it (the build context docker is sent). Symbolic
 * links are listed, not followed: the context packs them as links, and following one could
 * loop forever or walk out of the folder.
 */
function contextFiles(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === '.git') continue;
      const path = join(dir, name);
      if (lstatSync(path).isDirectory()) walk(path);
      else out.push(relative(folder, path));
    }
  };
  walk(folder);
  return out;
}

export interface BuildOptions {
  /** The folder with the Dockerfile: the build context. */
  folder: string;
  tag: string;
  /** Each line of docker's output, as it comes (for the pusher's terminal). */
  onLine?: (line: string) => void;
  /** Rebuild even when the tag exists. Tags are content-addressed, so this is rarely wanted. */
  force?: boolean;
  /** Stops the build when aborted (docker ends a build whose request is closed). */
  abortSignal?: AbortSignal;
  /** The memory limit of the build's steps, in bytes; swap is not given beyond it. */
  memory?: number;
}

/**
 * Builds an image from a folder, unless an image with that tag is there already (tags are
 * content digests, so an existing tag is the same build). Docker reports build failures
 * inside its output stream, not as an HTTP error: they are caught here and thrown as
 * ImageBuildError with the end of the output.
 */
export async function buildImage(docker: Docker, options: BuildOptions): Promise<'built' | 'cached'> {
  if (!options.force && (await hasImage(docker, options.tag))) return 'cached';
  for (let attempt = 1; ; attempt++) {
    try {
      await buildOnce(docker, options);
      return 'built';
    } catch (err) {
      if (!(err instanceof ImageBuildError) || !CACHE_RACE.test(err.reason) || attempt >= CACHE_RACE_ATTEMPTS) throw err;
      options.onLine?.(`the build cache changed under this build (an image it reused was removed meanwhile); building again (${attempt + 1} of ${CACHE_RACE_ATTEMPTS})`);
    }
  }
}

/**
 * Docker's classic builder reuses a cached step's image as the parent of the next step; when
 * that image is removed while the step runs (another build's image removed, image GC), the
 * commit fails with one of these. Building again starts from what is there now.
 */
const CACHE_RACE = /unknown parent image ID|No such image: sha256:/;
const CACHE_RACE_ATTEMPTS = 3;

async function buildOnce(docker: Docker, options: BuildOptions): Promise<void> {
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 15) tail.shift();
    options.onLine?.(line);
  };
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage({ context: options.folder, src: contextFiles(options.folder) }, {
      t: options.tag, rm: true, forcerm: true,
      ...(options.memory !== undefined && { memory: options.memory, memswap: options.memory }),
      ...(options.abortSignal && { abortSignal: options.abortSignal }),
    });
  } catch (err) {
    throw new ImageBuildError(options.tag, options.folder, (err as Error).message, []);
  }
  await new Promise<void>((resolve, reject) => {
    let buffer = '';
    let failed: string | undefined;
    const handle = (raw: string) => {
      if (!raw.trim()) return;
      let message: { stream?: string; status?: string; error?: string; errorDetail?: { message?: string } };
      try {
        message = JSON.parse(raw);
      } catch {
        keep(raw);
        return;
      }
      if (message.error !== undefined) failed = message.errorDetail?.message ?? message.error;
      for (const line of (message.stream ?? message.status ?? '').split('\n')) if (line.trim()) keep(line.trimEnd());
    };
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let at: number;
      while ((at = buffer.indexOf('\n')) >= 0) {
        handle(buffer.slice(0, at));
        buffer = buffer.slice(at + 1);
      }
    });
    const signal = options.abortSignal;
    const abort = () => {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      reject(new ImageBuildError(options.tag, options.folder, 'stopped (aborted)', tail));
    };
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    stream.on('close', () => signal?.removeEventListener('abort', abort));
    stream.on('error', (err: Error) => reject(new ImageBuildError(options.tag, options.folder, err.message, tail)));
    stream.on('end', () => {
      handle(buffer);
      if (failed !== undefined) reject(new ImageBuildError(options.tag, options.folder, failed, tail));
      else resolve();
    });
  });
}
