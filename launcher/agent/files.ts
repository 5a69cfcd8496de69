import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Etcd3, IKeyValue } from 'etcd3';
import { atomicWriteAsync } from '../../home/index.js';
import { followPrefix } from '../etcd-follow.js';
import { writeHostsBlock } from './hosts-file.js';

/** Files every server keeps in sync (DESIGN.md, etcd keys): `/quarry/config/files/<path>`. */
export const FILES_PREFIX = '/quarry/config/files/';
/** What the sync wrote, kept in its root, so that a file deleted while it was away goes too. */
export const FILES_MANIFEST = '.quarry-files.json';
/** The key whose value is quarry's block of the server's `/etc/hosts`. */
export const HOSTS_PATH = 'etc/hosts';

/**
 * The path under the files root that a key stands for, or undefined when the key is not one
 * the agent may write: empty, absolute, with `.` or `..` or empty segments, a NUL, or the
 * manifest itself. The result uses `/` and never leaves the root.
 */
export function filePathOf(key: string, prefix: string = FILES_PREFIX): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const path = key.slice(prefix.length);
  if (path === '' || path.includes('\0') || path.includes('\\')) return undefined;
  const segments = path.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return undefined;
  if (path === FILES_MANIFEST) return undefined;
  return path;
}

export interface FileSyncOptions {
  etcd: Etcd3;
  /** The folder the files are written under. */
  root: string;
  prefix?: string;
  log?: (line: string) => void;
  /**
   * The server's hosts file: `etc/hosts` is written there, as quarry's block between its
   * markers (every other line kept), in place under a lock in `lockDir`, not under the root.
   */
  hostsFile?: { path: string; lockDir: string };
}

export interface FileSync {
  /** Resolves after the first whole read was written out. */
  readonly synced: Promise<void>;
  stop(): Promise<void>;
}


/**
 * Keeps `<root>/<path>` equal to etcd's `/quarry/config/files/<path>`: the prefix is read
 * whole (files written, files this sync wrote before and that are gone now removed), then
 * watched from just after that read; after a reconnection it is read whole again. Writes are
 * atomic (a temporary file renamed over) and applied one at a time, in etcd's order.
 */
export function startFileSync(options: FileSyncOptions): FileSync {
  const { etcd, root } = options;
  const prefix = options.prefix ?? FILES_PREFIX;
  const log = options.log ?? (() => undefined);
  const manifestPath = join(root, FILES_MANIFEST);
  let revision = 0;
  /** The paths written, as the manifest on disk says. */
  let written: Set<string> | undefined;
  /** Every change to the folder, in order. */
  let queue: Promise<void> = Promise.resolve();
  let resolveSynced!: () => void;
  const synced = new Promise<void>((resolve) => { resolveSynced = resolve; });

  const serial = (work: () => Promise<void>): Promise<void> => {
    const next = queue.then(work);
    queue = next.catch(() => undefined);
    return next;
  };

  async function manifest(): Promise<Set<string>> {
    if (written) return written;
    try {
      const list = JSON.parse(await readFile(manifestPath, 'utf8')) as unknown;
      written = new Set(Array.isArray(list) ? list.filter((p): p is string => typeof p === 'string' && filePathOf(prefix + p, prefix) === p) : []);
    } catch {
      written = new Set();
    }
    return written;
  }

  async function atomic(path: string, data: Buffer | string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    // The server's config files, for its containers to read: not private like a home's state.
    await atomicWriteAsync(path, data, 0o644);
  }

  async function saveManifest(): Promise<void> {
    await atomic(manifestPath, `${JSON.stringify([...(await manifest())].sort(), null, 1)}\n`);
  }

  async function put(path: string, value: Buffer): Promise<boolean> {
    if (path === HOSTS_PATH && options.hostsFile) {
      (await manifest()).add(path);
      return writeHostsBlock(options.hostsFile.path, value.toString('utf8'), options.hostsFile.lockDir);
    }
    const target = join(root, path);
    const now = await readFile(target).catch(() => undefined);
    (await manifest()).add(path);
    if (now !== undefined && now.equals(value)) return false;
    await atomic(target, value);
    return true;
  }

  async function remove(path: string): Promise<boolean> {
    const had = (await manifest()).delete(path);
    if (path === HOSTS_PATH && options.hostsFile) {
      await writeHostsBlock(options.hostsFile.path, '', options.hostsFile.lockDir);
      return had;
    }
    await rm(join(root, path), { force: true });
    return had;
  }

  function pathOf(kv: IKeyValue): string | undefined {
    const key = kv.key.toString();
    const path = filePathOf(key, prefix);
    if (path === undefined) log(`files: ignoring ${key}: not a path the agent may write under ${root}`);
    return path;
  }

  /** Reads the prefix whole and makes the folder match it. */
  function resync(): Promise<number> {
    return serial(async () => {
      const response = await etcd.getAll().prefix(prefix).exec();
      const wanted = new Map<string, Buffer>();
      for (const kv of response.kvs) {
        const path = pathOf(kv);
        if (path !== undefined) wanted.set(path, kv.value);
      }
      let changed = 0;
      for (const [path, value] of wanted) if (await put(path, value)) changed += 1;
      for (const path of [...(await manifest())]) {
        if (!wanted.has(path) && (await remove(path))) changed += 1;
      }
      await saveManifest();
      revision = Number(response.header.revision);
      log(`files: ${wanted.size} file(s) in sync under ${root}${changed > 0 ? ` (${changed} changed)` : ''}`);
    }).then(() => revision);
  }

  function change(kind: 'put' | 'delete', kv: IKeyValue): void {
    const path = pathOf(kv);
    if (path === undefined) return;
    const at = Number(kv.mod_revision);
    void serial(async () => {
      if (at <= revision) return; // the whole read already had it
      if (kind === 'put') {
        if (await put(path, kv.value)) log(`files: wrote ${path}`);
      } else if (await remove(path)) {
        log(`files: removed ${path}`);
      }
      await saveManifest();
      revision = at;
    }).catch((err: unknown) => log(`files: cannot ${kind === 'put' ? 'write' : 'remove'} ${path} (${(err as Error).message})`));
  }

  const follower = followPrefix({ etcd, prefix, resync, change, name: 'files', log, watching: resolveSynced });
  return {
    synced,
    async stop() {
      await follower.stop();
      await queue;
    },
  };
}
