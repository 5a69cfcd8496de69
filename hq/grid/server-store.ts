import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from '../../pacific/index.js';
import { atomicWrite } from '../atomic-write.js';

/**
 * The servers HQ made or joined, as their provider reported them: `servers/<id>/settings.json`
 * under the home (DESIGN.md, State). Written atomically when a server joins, removed when it
 * leaves; read at start to reconnect, and by the static provider to know who had joined.
 */
export class ServerStore {
  private readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, 'servers');
  }

  all(): Server[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((id) => existsSync(this.file(id)))
      .map((id) => JSON.parse(readFileSync(this.file(id), 'utf8')) as Server)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): Server | undefined {
    return existsSync(this.file(id)) ? (JSON.parse(readFileSync(this.file(id), 'utf8')) as Server) : undefined;
  }

  save(server: Server): void {
    mkdirSync(join(this.dir, server.id), { recursive: true, mode: 0o700 });
    atomicWrite(this.file(server.id), `${JSON.stringify(server, null, 2)}\n`, 0o600);
  }

  forget(id: string): void {
    rmSync(join(this.dir, id), { recursive: true, force: true });
  }

  private file(id: string): string {
    return join(this.dir, id, 'settings.json');
  }
}
