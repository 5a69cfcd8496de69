import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from '../../pacific/index.js';
import { atomicWrite, type HomeLayout } from '../../home/index.js';

/**
 * The servers HQ made or joined, as their provider reported them: `servers/<id>/settings.json`
 * under the home (DESIGN.md, State). Written atomically when a server joins, removed when it
 * leaves; read once at start (to reconnect, and for the static provider to know who had
 * joined), then kept in memory: addresses are asked for every route and endpoint.
 */
export class ServerStore {
  private readonly dir: string;
  private cache: Map<string, Server> | undefined;

  constructor(home: HomeLayout) {
    this.dir = home.serversDir;
  }

  private records(): Map<string, Server> {
    if (!this.cache) {
      const ids = existsSync(this.dir) ? readdirSync(this.dir).filter((id) => existsSync(this.file(id))) : [];
      this.cache = new Map(ids.map((id) => [id, JSON.parse(readFileSync(this.file(id), 'utf8')) as Server]));
    }
    return this.cache;
  }

  all(): Server[] {
    return [...this.records().values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): Server | undefined {
    return this.records().get(id);
  }

  save(server: Server): void {
    mkdirSync(join(this.dir, server.id), { recursive: true, mode: 0o700 });
    atomicWrite(this.file(server.id), `${JSON.stringify(server, null, 2)}\n`, 0o600);
    this.records().set(server.id, server);
  }

  forget(id: string): void {
    rmSync(join(this.dir, id), { recursive: true, force: true });
    this.records().delete(id);
  }

  /** The client certificate of a server's agent (for etcd), made once and kept with its record. */
  agentCert(id: string): { cert: string; key: string } | undefined {
    try {
      return { cert: readFileSync(join(this.dir, id, 'agent.crt'), 'utf8'), key: readFileSync(join(this.dir, id, 'agent.key'), 'utf8') };
    } catch {
      return undefined;
    }
  }

  saveAgentCert(id: string, issued: { cert: string; key: string }): void {
    mkdirSync(join(this.dir, id), { recursive: true, mode: 0o700 });
    atomicWrite(join(this.dir, id, 'agent.key'), issued.key, 0o600);
    atomicWrite(join(this.dir, id, 'agent.crt'), issued.cert, 0o600);
  }

  /** A server's drain (`quarry servers drain`), kept across HQ's restarts until it is undrained or removed. */
  draining(id: string): { remove: boolean } | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, id, 'drain.json'), 'utf8')) as { remove: boolean };
    } catch {
      return undefined;
    }
  }

  saveDraining(id: string, drain: { remove: boolean } | undefined): void {
    const file = join(this.dir, id, 'drain.json');
    if (drain === undefined) rmSync(file, { force: true });
    else atomicWrite(file, `${JSON.stringify(drain)}\n`, 0o600);
  }

  private file(id: string): string {
    return join(this.dir, id, 'settings.json');
  }
}
