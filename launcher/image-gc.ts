import type Docker from 'dockerode';

/*
 * Old images go from one docker engine (issue 16: "old images are collected"). The decision
 * which tags go is plan/'s `imageGc`; this only lists the engine's tags, asks, and untags.
 * Nothing is forced and nothing is pruned beyond what an untag frees: a tag whose image a
 * container still uses is refused by docker (409) and skipped; layers go only when no other
 * image holds them.
 */

export interface CollectImagesOptions {
  /** One line per tag removed or skipped. */
  log?: (line: string) => void;
  /**
   * A tag chosen by the decision is spared when its image was tagged less than this long ago
   * (docker's `LastTagTime`, else its creation): it may be the build of a push still in flight,
   * whose release is not recorded yet. Default 1 hour; 0 spares nothing.
   */
  minAgeMs?: number;
  /** The clock, for the age check (ms). */
  now?: () => number;
}

export interface ImageCollection {
  /** The tags removed, in the order the decision gave them. */
  removed: string[];
  /** Tags the decision chose that stay, and why (a container uses it, gone already, too young, an engine error). */
  skipped: Array<{ tag: string; why: string }>;
  /**
   * Bytes of the images actually deleted (not only untagged), best effort: for each, its size
   * less that of its nearest ancestor image that stays (the base it was built on), so layers
   * still held are not counted; an image with no ancestry on the engine (loaded, pulled)
   * counts whole, base layers included.
   */
  bytesFreed: number;
}

/** What a removal answers: one entry per tag untagged and per image deleted. */
interface RemoveAnswer {
  Untagged?: string;
  Deleted?: string;
}

export const DEFAULT_IMAGE_MIN_AGE_MS = 60 * 60_000;

/**
 * Lists the engine's image tags, asks `decide` which to remove (plan/'s `imageGc`, given the
 * tags), and untags each chosen one that is present (`noprune: false`: the image and its
 * untagged parents are deleted once no tag and no container holds them; never `force`). A
 * 409 (a container uses the image) and a 404 (gone already) are skipped and said; so is any
 * other engine error, so that one bad tag does not stop the rest.
 */
export async function collectImages(docker: Docker, decide: (present: string[]) => readonly string[] | Promise<readonly string[]>,
  options: CollectImagesOptions = {}): Promise<ImageCollection> {
  const log = options.log ?? (() => undefined);
  const minAgeMs = options.minAgeMs ?? DEFAULT_IMAGE_MIN_AGE_MS;
  const now = options.now ?? Date.now;

  // Every image, intermediate ones too: their sizes tell what a deletion frees.
  const images = await docker.listImages({ all: true });
  const byId = new Map(images.map((i) => [i.Id, i]));
  const tagged = new Map<string, Docker.ImageInfo>();
  for (const image of images) for (const tag of image.RepoTags ?? []) if (tag !== '<none>:<none>') tagged.set(tag, image);

  const chosen = [...new Set(await decide([...tagged.keys()]))];
  const result: ImageCollection = { removed: [], skipped: [], bytesFreed: 0 };
  const skip = (tag: string, why: string) => {
    result.skipped.push({ tag, why });
    log(`kept ${tag}: ${why}`);
  };

  for (const tag of chosen) {
    const listed = tagged.get(tag);
    if (!listed) {
      skip(tag, 'not on this engine');
      continue;
    }
    if (minAgeMs > 0) {
      const age = await ageOf(docker, tag, now());
      if (age === 'gone') {
        skip(tag, 'gone already');
        continue;
      }
      if (age !== undefined && age < minAgeMs) {
        skip(tag, `tagged ${formatAge(age)} ago, less than ${formatAge(minAgeMs)}: it may belong to a push in flight`);
        continue;
      }
    }
    let answer: RemoveAnswer[];
    try {
      answer = (await docker.getImage(tag).remove({ noprune: false })) as RemoveAnswer[];
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) skip(tag, 'gone already');
      else if (status === 409) skip(tag, await conflictOf(docker, err));
      else skip(tag, `the engine refused: ${messageOf(err)}`);
      continue;
    }
    result.removed.push(tag);
    const deleted = new Set((answer ?? []).flatMap((a) => (a.Deleted ? [a.Deleted] : [])));
    const freed = deleted.has(listed.Id) ? freedBy(listed, deleted, byId) : 0;
    result.bytesFreed += freed;
    log(`removed ${tag}${deleted.has(listed.Id) ? ` (${formatBytes(freed)} freed)` : ' (untagged; its image has other tags)'}`);
  }
  return result;
}

/**
 * The image tags containers on this engine use, running or not: the name each was created
 * with, and every tag of the image it runs. For `imageGc`'s `inUse`, gathered from every engine.
 */
export async function imagesInUse(docker: Docker): Promise<string[]> {
  const [containers, images] = await Promise.all([docker.listContainers({ all: true }), docker.listImages()]);
  const tagsOf = new Map(images.map((i) => [i.Id, i.RepoTags ?? []]));
  const used = new Set<string>();
  for (const c of containers) {
    if (c.Image && !c.Image.startsWith('sha256:')) used.add(c.Image);
    for (const tag of tagsOf.get(c.ImageID) ?? []) if (tag !== '<none>:<none>') used.add(tag);
  }
  return [...used].sort();
}

/** How long ago (ms) an image was last tagged (else made); 'gone' if it is no more; undefined if unknown. */
async function ageOf(docker: Docker, tag: string, now: number): Promise<number | 'gone' | undefined> {
  let info: { Created?: string; Metadata?: { LastTagTime?: string } };
  try {
    info = await docker.getImage(tag).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return 'gone';
    return undefined;
  }
  const times = [info.Metadata?.LastTagTime, info.Created].map((t) => (t ? Date.parse(t) : Number.NaN));
  // An image never tagged here says 0001-01-01: no time at all.
  const at = times.find((t) => Number.isFinite(t) && t > 0);
  return at === undefined ? undefined : Math.max(0, now - at);
}

/**
 * What deleting `image` freed: its size less that of its nearest ancestor that was not
 * deleted (sizes include every layer below, so the difference is the layers that went).
 */
function freedBy(image: Docker.ImageInfo, deleted: ReadonlySet<string>, byId: ReadonlyMap<string, Docker.ImageInfo>): number {
  let parent = image.ParentId ? byId.get(image.ParentId) : undefined;
  while (parent && deleted.has(parent.Id)) parent = parent.ParentId ? byId.get(parent.ParentId) : undefined;
  return Math.max(0, image.Size - (parent?.Size ?? 0));
}

/** A 409's reason: the container that holds the image, by name when it can be found. */
async function conflictOf(docker: Docker, err: unknown): Promise<string> {
  const message = messageOf(err);
  const id = /container ([0-9a-f]{12,64})/.exec(message)?.[1];
  if (id) {
    const name = await docker.getContainer(id).inspect().then((c) => c.Name.replace(/^\//, ''), () => undefined);
    return `in use by container ${name ? `${name} (${id.slice(0, 12)})` : id.slice(0, 12)}`;
  }
  return `in use: ${message}`;
}

function messageOf(err: unknown): string {
  const json = (err as { json?: { message?: string } } | null)?.json;
  return json?.message ?? (err as Error)?.message ?? String(err);
}

function formatAge(ms: number): string {
  if (ms >= 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} B`;
}
