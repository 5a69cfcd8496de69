import type Docker from 'dockerode';
import {
  ensureImage, ImageTransferError, localImage, messageOf, remoteId, statusOf, type EnsureImageOptions,
} from './image-transfer.js';

/** Credentials for a registry, sent as docker's X-Registry-Auth header: never in a URL, an argument or a log. */
export interface RegistryCredentials {
  username: string;
  password: string;
  serveraddress: string;
}

/** A registry the grid's engines pull from, and HQ's own engine pushes to. */
export interface ImageRegistry {
  /** `HOST:PORT` as the servers reach it (TLS; their engines trust its CA). */
  address: string;
  /** `HOST:PORT` HQ's engine pushes to (a loopback forward to the same registry). */
  local: string;
  auth: RegistryCredentials;
  localAuth: RegistryCredentials;
  /** Resolves when the registry answers (it may be stopped for a moment, to collect old blobs). */
  ready?(): Promise<void>;
}

export interface ShipOptions extends EnsureImageOptions {
  /**
   * Runs once per engine before its first pull: what makes that engine trust the registry
   * (the CA's certificate at `/etc/docker/certs.d/<address>/ca.crt`).
   */
  prepare?: () => Promise<void>;
}

/** What was done to bring an image to an engine: nothing, a whole `docker save | load`, or a pull of the layers it lacked. */
export type ShipResult = 'present' | 'loaded' | 'pulled';

/** Brings `image` (as this machine's engine has it) to a server's engine. */
export interface ImageShipper {
  /** How it moves images, for messages: `by layers from HOST:PORT` or `whole`. */
  readonly how: string;
  ship(remote: Docker, image: string, options?: ShipOptions): Promise<ShipResult>;
  /** Forgets which images it pushed (after the registry collected old ones). */
  forgetPushed(): void;
}

/** Whole images, `docker save` streamed into `docker load` (no registry): `ensureImage`. */
export function wholeImageShipper(local: Docker): ImageShipper {
  return {
    how: 'whole (docker save | docker load)',
    ship: (remote, image, options = {}) => ensureImage(local, remote, image, options),
    forgetPushed: () => undefined,
  };
}

const MB = 1024 * 1024;

/**
 * Images by layers through a registry: HQ's engine pushes each image once (the registry keeps
 * the layers it has), and a server's engine pulls it, fetching only the layers it lacks, then
 * tags it with the image's own name and checks that the Id is the one HQ built. Calls for one
 * engine and image at the same time share one pull; pushes of one image share one push.
 */
export function registryShipper(local: Docker, registry: ImageRegistry): ImageShipper {
  const pushed = new Map<string, Promise<void>>();
  const pulling = new WeakMap<Docker, Map<string, Promise<ShipResult>>>();
  const prepared = new WeakMap<Docker, Promise<void>>();

  const push = (image: string, id: string): Promise<void> => {
    const key = `${image}@${id}`;
    let done = pushed.get(key);
    if (!done) {
      done = pushImage(local, registry, image).catch((err: unknown) => {
        pushed.delete(key);
        throw err;
      });
      pushed.set(key, done);
    }
    return done;
  };

  const ship = async (remote: Docker, image: string, options: ShipOptions): Promise<ShipResult> => {
    const server = options.server ?? 'the server';
    const wanted = (await localImage(local, image, server)).Id;
    if ((await remoteId(remote, image, server)) === wanted) return 'present';
    if (options.prepare) {
      let ready = prepared.get(remote);
      if (!ready) {
        ready = options.prepare().catch((err: unknown) => {
          prepared.delete(remote);
          throw new ImageTransferError(image, server, `${server}'s engine cannot be made to trust the registry ${registry.address}: ${messageOf(err)}`, { cause: err });
        });
        prepared.set(remote, ready);
      }
      await ready;
    }
    await registry.ready?.();
    await push(image, wanted);
    const started = Date.now();
    const { repo, tag } = splitName(image);
    const ref = `${registry.address}/${repo}:${tag}`;
    let moved: PullFigures;
    try {
      // The credentials go in the X-Registry-Auth header (createImage's first argument), not in the query.
      const stream = await remote.createImage(registry.auth, { fromImage: `${registry.address}/${repo}`, tag });
      moved = await followPull(stream);
    } catch (error) {
      if (error instanceof ImageTransferError) throw error;
      throw new ImageTransferError(image, server, `${server} could not pull ${image} from ${registry.address}: ${refusal(error)}`, { cause: error });
    }
    if (moved.error) throw new ImageTransferError(image, server, `${server} could not pull ${image} from ${registry.address}: ${moved.error}`);
    await remote.getImage(ref).tag({ repo, tag });
    // The image keeps its own name only; the layers stay, and so does the engine's note of where they came from.
    await remote.getImage(ref).remove({ noprune: true }).catch(() => undefined);
    const got = await remoteId(remote, image, server);
    if (got !== wanted) throw new ImageTransferError(image, server, `${server} pulled ${image} but has it as ${got ?? 'nothing'}, not ${wanted}`);
    options.progress?.(`pulled ${image} into ${server}: ${moved.fetched} of ${moved.layers} layers fetched, ` +
      `${(moved.bytes / MB).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 'pulled';
  };

  return {
    how: `by layers from ${registry.address}`,
    ship(remote, image, options = {}) {
      let mine = pulling.get(remote);
      if (!mine) pulling.set(remote, (mine = new Map()));
      const running = mine.get(image);
      if (running) return running;
      const done = ship(remote, image, options).finally(() => mine.delete(image));
      mine.set(image, done);
      return done;
    },
    forgetPushed: () => pushed.clear(),
  };
}

/** `repo[:tag]` (a port in a registry host is not a tag). */
export function splitName(image: string): { repo: string; tag: string } {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? { repo: image.slice(0, colon), tag: image.slice(colon + 1) } : { repo: image, tag: 'latest' };
}

/** Pushes the local image to the registry under its own name, then takes the registry's name off again. */
async function pushImage(local: Docker, registry: ImageRegistry, image: string): Promise<void> {
  const { repo, tag } = splitName(image);
  const named = `${registry.local}/${repo}`;
  await local.getImage(image).tag({ repo: named, tag });
  try {
    const stream = await local.getImage(`${named}:${tag}`).push({}, undefined, registry.localAuth) as unknown as NodeJS.ReadableStream;
    const answer = await followPull(stream);
    if (answer.error) throw new ImageTransferError(image, 'the registry', `pushing ${image} to HQ's registry failed: ${answer.error}`);
  } catch (error) {
    if (error instanceof ImageTransferError) throw error;
    throw new ImageTransferError(image, 'the registry', `pushing ${image} to HQ's registry failed: ${refusal(error)}`, { cause: error });
  } finally {
    await local.getImage(`${named}:${tag}`).remove({ noprune: true }).catch(() => undefined);
  }
}

interface PullFigures {
  /** Layers of the image. */
  layers: number;
  /** Layers fetched (the rest the engine had). */
  fetched: number;
  /** Bytes fetched, as the registry sent them (compressed). */
  bytes: number;
  error?: string;
}

/** Reads a pull's (or push's) JSON messages to their end: the layers fetched and their sizes, or the engine's error. */
async function followPull(stream: NodeJS.ReadableStream): Promise<PullFigures> {
  const sizes = new Map<string, number>();
  const seen = new Set<string>();
  let error: string | undefined;
  let buffer = '';
  const handle = (line: string) => {
    if (!line.trim()) return;
    let m: { id?: string; status?: string; progressDetail?: { total?: number }; error?: string; errorDetail?: { message?: string } };
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      return;
    }
    if (m.error || m.errorDetail?.message) error = m.errorDetail?.message ?? m.error;
    if (!m.id || !m.status) return;
    if (/^(Pulling fs layer|Already exists|Waiting)$/.test(m.status)) seen.add(m.id);
    if (m.status === 'Downloading' && m.progressDetail?.total) sizes.set(m.id, m.progressDetail.total);
    if (m.status === 'Download complete' && !sizes.has(m.id)) sizes.set(m.id, 0);
  };
  for await (const chunk of stream) {
    buffer += chunk.toString();
    let at: number;
    while ((at = buffer.indexOf('\n')) >= 0) {
      handle(buffer.slice(0, at));
      buffer = buffer.slice(at + 1);
    }
  }
  handle(buffer);
  const bytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  return { layers: seen.size, fetched: sizes.size, bytes, ...(error !== undefined && { error }) };
}

function refusal(error: unknown): string {
  return (error as { json?: { message?: string } } | null)?.json?.message ?? messageOf(error);
}
