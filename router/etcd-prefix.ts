import type { Etcd3, Watcher } from 'etcd3';

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * A prefix of etcd kept whole in memory, for keys that change seldom (certificates, ACME
 * answers): every change, and every reconnection of the watch, reads the prefix whole again,
 * so what is handed over is always a state etcd had, never one pieced together.
 */
export class EtcdPrefixMirror {
  private watcher: Watcher | undefined;
  private closed = false;
  private reading: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly onChange: (kvs: ReadonlyMap<string, string>) => void,
    private readonly log: (line: string) => void,
  ) {}

  /** Resolves after the first read; keeps trying (logging) until etcd answers. */
  async start(): Promise<void> {
    let backoff = 250;
    while (!this.closed) {
      try {
        await this.read();
        await this.watch();
        return;
      } catch (err) {
        if (this.closed) return;
        this.log(`${this.prefix}: etcd unavailable (${(err as Error).message}); retrying in ${backoff} ms`);
        await delay(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) {
      watcher.removeAllListeners();
      watcher.on('error', () => undefined);
      await Promise.race([watcher.cancel().catch(() => undefined), delay(5000)]);
    }
    await this.reading?.catch(() => undefined);
  }

  private async watch(): Promise<void> {
    const watcher = await this.client.watch().prefix(this.prefix).create();
    if (this.closed) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.watcher = watcher;
    const reread = () => void this.read().catch((err: Error) => this.log(`${this.prefix}: read failed (${err.message})`));
    watcher.on('put', reread);
    watcher.on('delete', reread);
    watcher.on('connected', reread);
    watcher.on('error', (err: Error) => {
      if (this.closed) return;
      this.log(`${this.prefix}: etcd watch cancelled (${err.message}); watching anew`);
      this.watcher = undefined;
      void this.start();
    });
    // A change between the first read and the watch's creation is not missed.
    reread();
  }

  /** Reads the prefix whole; a change during a read makes one more read after it. */
  private read(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          const kvs = await this.client.getAll().prefix(this.prefix).strings();
          if (this.closed) return;
          this.onChange(new Map(Object.entries(kvs)));
        } while (this.again && !this.closed);
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
