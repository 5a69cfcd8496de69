import type { Etcd3, IKeyValue, Watcher } from 'etcd3';

export interface FollowOptions {
  etcd: Etcd3;
  prefix: string;
  /**
   * Reads the prefix whole and takes it in; resolves with the revision it read at. Called
   * first, and again whenever the watch reconnects (changes may have been missed).
   */
  resync(): Promise<number>;
  /** One change after the whole read (a put or a delete under the prefix). */
  change(kind: 'put' | 'delete', kv: IKeyValue): void;
  /** Once watching. */
  watching?(): void;
  /** `files`, `locknet`: the start of every line it says. */
  name: string;
  log: (line: string) => void;
}

export interface Follower {
  /** Cancels the watch (waiting at most 5 s for etcd) and stops reading. */
  stop(): Promise<void>;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * Follows a prefix of etcd: read whole, then watched from just after that read; read whole
 * again when the watch reconnects, and watched anew when it ends. While etcd does not answer,
 * it tries again with a growing delay (250 ms to 5 s), saying so once per kind of trouble.
 * The agent's config file sync and locknet's membership both follow their prefix this way.
 */
export function followPrefix(options: FollowOptions): Follower {
  const { etcd, prefix, name, log } = options;
  let closed = false;
  let watcher: Watcher | undefined;

  async function watch(): Promise<void> {
    let backoff = 250;
    let said: string | undefined;
    while (!closed) {
      try {
        const revision = await options.resync();
        const made = await etcd.watch().prefix(prefix).startRevision(String(revision + 1)).create();
        if (closed) {
          await made.cancel().catch(() => undefined);
          return;
        }
        watcher = made;
        made.on('put', (kv: IKeyValue) => options.change('put', kv));
        made.on('delete', (kv: IKeyValue) => options.change('delete', kv));
        made.on('connected', () => {
          options.resync().catch((err: unknown) => log(`${name}: cannot read ${prefix} again (${firstLine(err)})`));
        });
        made.on('error', (err: Error) => {
          log(`${name}: the watch of ${prefix} ended (${err.message}); watching anew`);
          if (watcher === made) watcher = undefined;
          if (!closed) void watch();
        });
        options.watching?.();
        return;
      } catch (err) {
        if (closed) return;
        const message = firstLine(err);
        if (message !== said) log(`${name}: cannot read ${prefix} (${message}); trying again until etcd answers`);
        said = message;
        await delay(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  const running = watch();
  return {
    async stop() {
      closed = true;
      const w = watcher;
      watcher = undefined;
      if (w) {
        w.removeAllListeners();
        w.on('error', () => undefined);
        await Promise.race([w.cancel().catch(() => undefined), delay(5000)]);
      }
      await Promise.race([running, delay(5000)]);
    },
  };
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!;
}
