import { collectImages, type ImageCollection } from '../../launcher/index.js';
import { imageGc, releaseImages, type ReleaseImages } from '../../plan/index.js';
import { DEFAULT_KEEP_RELEASES } from '../config.js';
import type { ControlParts, ImageCollector } from './context.js';

/** How long after the last task the collection waits, so that a burst of pushes is collected once. */
const COLLECT_DELAY_MS = 5_000;


/**
 * Old images collected after tasks (issue 16, docs/hq.md "Images on a grid"): the images of
 * each stack's last `keepReleases` releases stay, and so does anything a container uses or a
 * push just built (`imageMinAgeMs`); older builds of HQ's stacks leave HQ's engine, the grid's
 * servers and HQ's registry (whose blobs no manifest names any more are then collected, while
 * no task runs). One line in HQ's log says what went.
 */
export function startImageCollector(parts: ControlParts): ImageCollector {
  const { ctx, store, tasks } = parts;
  const keep = ctx.config?.keepReleases ?? DEFAULT_KEEP_RELEASES;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<string> | undefined;
  let stopped = false;

  const collect = async (): Promise<string> => {
    const releases: Record<string, ReleaseImages[]> = {};
    for (const stack of store.stacks()) releases[stack] = store.releases(stack).map((r) => releaseImages(r.version, r.spec));
    const decide = (present: string[]) => imageGc({ releases, keep, inUse: [], present }).remove;
    const options = { minAgeMs: ctx.imageMinAgeMs ?? undefined, log: () => undefined };
    const here = await collectImages(ctx.docker, decide, options.minAgeMs === undefined ? {} : { minAgeMs: options.minAgeMs });
    const servers: ImageCollection[] = await (parts.cluster.collectImages?.(decide, options.minAgeMs) ?? Promise.resolve([]));
    let registry = '';
    if (ctx.registry) registry = await collectRegistry(parts, decide);
    const onServers = servers.reduce((n, c) => n + c.removed.length, 0);
    // Only HQ's engine knows what a deletion frees (its images keep their build ancestry; pulled ones do not).
    const freed = here.bytesFreed;
    return `images: ${here.removed.length} old image(s) removed here, ${onServers} on the servers` +
      `${registry ? `, ${registry}` : ''} (${(freed / 1048576).toFixed(1)} MB freed here; the last ${keep} release(s) of each stack kept)`;
  };

  const run = (): Promise<string> => {
    running ??= collect().finally(() => { running = undefined; });
    return running;
  };

  const attempt = () => {
    timer = undefined;
    if (stopped) return;
    if (tasks.running().length > 0) {
      timer = setTimeout(attempt, COLLECT_DELAY_MS);
      timer.unref();
      return;
    }
    void run().then((line) => ctx.log(line), (err: unknown) => ctx.log(`images: the collection failed (${(err as Error).message}); it runs again after the next task`));
  };

  return {
    request() {
      if (stopped || timer) return;
      timer = setTimeout(attempt, COLLECT_DELAY_MS);
      timer.unref();
    },
    collectNow: run,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}

/** The registry's tags that no kept release names: their manifests deleted, then the registry's garbage-collect. */
async function collectRegistry(parts: ControlParts, decide: (present: string[]) => readonly string[]): Promise<string> {
  const registry = parts.ctx.registry!;
  const catalog = await registry.api('GET', '/v2/_catalog?n=1000');
  if (catalog.status !== 200) throw new Error(`the registry's catalog answered ${catalog.status}`);
  const present: string[] = [];
  for (const repo of (JSON.parse(catalog.body) as { repositories?: string[] }).repositories ?? []) {
    const tags = await registry.api('GET', `/v2/${repo}/tags/list`);
    if (tags.status !== 200) continue;
    for (const tag of (JSON.parse(tags.body) as { tags?: string[] | null }).tags ?? []) present.push(`${repo}:${tag}`);
  }
  const accept = { accept: 'application/vnd.docker.distribution.manifest.v2+json' };
  let deleted = 0;
  for (const name of decide(present)) {
    const at = name.lastIndexOf(':');
    const [repo, tag] = [name.slice(0, at), name.slice(at + 1)];
    const head = await registry.api('HEAD', `/v2/${repo}/manifests/${tag}`, accept);
    const digest = head.headers['docker-content-digest'];
    if (head.status !== 200 || typeof digest !== 'string') continue;
    const gone = await registry.api('DELETE', `/v2/${repo}/manifests/${digest}`);
    if (gone.status === 202 || gone.status === 404) deleted += 1;
  }
  if (deleted === 0) return '0 from the registry';
  // Pulls fail while the registry restarts: only while no task runs (the caller checked), and the shipper pushes again.
  const said = await registry.garbageCollect();
  parts.cluster.forgetPushed?.();
  return `${deleted} from the registry (${said})`;
}
