import { Transform } from 'node:stream';
import type Docker from 'dockerode';
import { QuarryError } from '../errors/index.js';

/** An image could not be brought to a server; the message says what to do. */
export class ImageTransferError extends QuarryError {
  constructor(readonly image: string, readonly server: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface EnsureImageOptions {
  /** `loading IMAGE into SERVER (N MB)` and, once loaded, how long it took. */
  progress?: (message: string) => void;
  /** The server's name, for messages. */
  server?: string;
}

const MB = 1024 * 1024;
/** Transfers in flight, per remote engine and image: callers at the same time share one. */
const inFlight = new WeakMap<Docker, Map<string, Promise<'present' | 'loaded'>>>();

/**
 * Makes sure the remote engine has `image` as the local engine has it (the same image Id).
 * When it does: 'present', nothing is streamed. Otherwise the local `docker save` is streamed
 * into the remote `docker load` (no file, no registry), the load's own messages are checked,
 * and the remote is asked again for the Id: 'loaded'. Calls for one remote engine and image
 * at the same time share one transfer. Errors are ImageTransferError: the image missing here
 * (build it first), or the server's own message when its load failed.
 */
export function ensureImage(local: Docker, remote: Docker, image: string, options: EnsureImageOptions = {}): Promise<'present' | 'loaded'> {
  let perRemote = inFlight.get(remote);
  if (!perRemote) inFlight.set(remote, (perRemote = new Map()));
  const running = perRemote.get(image);
  if (running) return running;
  const transfer = transferImage(local, remote, image, options).finally(() => perRemote.delete(image));
  perRemote.set(image, transfer);
  return transfer;
}

async function transferImage(local: Docker, remote: Docker, image: string, options: EnsureImageOptions): Promise<'present' | 'loaded'> {
  const server = options.server ?? 'the server';
  const fail = (message: string, cause?: unknown) => new ImageTransferError(image, server, message, { cause });
  const wanted = await localImage(local, image, server);
  if ((await remoteId(remote, image, server)) === wanted.Id) return 'present';

  const size = Math.max(1, Math.round(wanted.Size / MB));
  options.progress?.(`loading ${image} into ${server} (${size} MB)`);
  const started = Date.now();
  let sent = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      callback(null, chunk);
    },
  });
  let saved: NodeJS.ReadableStream | undefined;
  try {
    saved = await local.getImage(image).get();
    saved.on('error', (error: Error) => counted.destroy(error));
    saved.pipe(counted);
    const answer = await remote.loadImage(counted, { quiet: true });
    const problem = await loadProblem(answer);
    if (problem) throw fail(`${server} could not load ${image}: ${problem}`);
  } catch (error) {
    if (error instanceof ImageTransferError) throw error;
    // An HTTP refusal from the server's engine (docker-modem's error carries its JSON).
    const refusal = (error as { json?: { message?: string } } | null)?.json?.message;
    if (statusOf(error) !== undefined) throw fail(`${server} could not load ${image}: ${refusal ?? messageOf(error)}`, error);
    throw fail(`streaming ${image} into ${server} failed after ${(sent / MB).toFixed(1)} MB: ${messageOf(error)}`, error);
  } finally {
    // The load answered (or failed): stop reading `docker save` if it is still going.
    const stream = saved as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    if (stream && !(stream as { readableEnded?: boolean }).readableEnded) stream.destroy?.();
  }
  const loaded = await remoteId(remote, image, server);
  if (loaded !== wanted.Id) {
    throw fail(`${server} loaded ${image} but has it as ${loaded ?? 'nothing'}, not ${wanted.Id}: was the tag changed there meanwhile?`);
  }
  const seconds = (Date.now() - started) / 1000;
  options.progress?.(`loaded ${image} into ${server} (${(sent / MB).toFixed(1)} MB in ${seconds.toFixed(1)} s)`);
  return 'loaded';
}

/** This machine's image `image`; an ImageTransferError when it is not here (build it first). */
export async function localImage(local: Docker, image: string, server: string): Promise<Docker.ImageInspectInfo> {
  try {
    return await local.getImage(image).inspect();
  } catch (error) {
    const fail = (message: string) => new ImageTransferError(image, server, message, { cause: error });
    if (statusOf(error) === 404) throw fail(`image ${image} is not on this machine's docker engine, so it cannot be sent to ${server}: build it first`);
    throw fail(`cannot read image ${image} from this machine's docker engine: ${messageOf(error)}`);
  }
}

/** The remote engine's image Id for `image`, or null when it has none by that name. */
export async function remoteId(remote: Docker, image: string, server: string): Promise<string | null> {
  try {
    return (await remote.getImage(image).inspect()).Id;
  } catch (error) {
    if (statusOf(error) === 404) return null;
    throw new ImageTransferError(image, server, `cannot ask ${server}'s docker engine for image ${image}: ${messageOf(error)}`, { cause: error });
  }
}

/**
 * Reads `docker load`'s answer to its end: newline-separated JSON messages. Returns the
 * server's error message, if any (a failed load still answers HTTP 200).
 */
async function loadProblem(answer: NodeJS.ReadableStream): Promise<string | null> {
  let text = '';
  for await (const chunk of answer) text += chunk.toString();
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    let message: { error?: string; errorDetail?: { message?: string } };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      continue;
    }
    if (message.error || message.errorDetail?.message) return message.errorDetail?.message ?? message.error ?? 'unknown error';
  }
  return null;
}

export function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | null)?.statusCode;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
