import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import ssh2 from 'ssh2';
import { createProvider, type Server } from '../../pacific/index.js';
import { atomicWrite } from '../atomic-write.js';
import type { HqConfig } from '../config.js';
import type { HomeLayout } from '../home.js';
import type { Progress } from '../progress.js';
import { GridCluster } from './grid-cluster.js';
import { ServerStore } from './server-store.js';

export interface OpenGridContext {
  home: HomeLayout;
  etcd: Etcd3;
  docker: Docker;
  log: (line: string) => void;
  onJoin?: (server: Server, engine: Docker, progress: Progress) => Promise<void>;
}

/**
 * HQ's grid from its config's `grid`: the provider (its settings checked, errors naming
 * `grid.provider.<key>`), the quarry key (the settings' own, else HQ's, made once under
 * `<home>/keys/quarry`), the servers recorded under `servers/`, and slicegrid's allocation.
 */
export async function openGrid(grid: NonNullable<HqConfig['grid']>, ctx: OpenGridContext): Promise<GridCluster> {
  const settings: Record<string, unknown> = { ...grid.provider };
  if (settings.privateKey === undefined && settings.privateKeyFile === undefined) settings.privateKey = quarryKey(ctx.home, ctx.log);
  const privateKey = typeof settings.privateKey === 'string' ? settings.privateKey : readFileSync(String(settings.privateKeyFile), 'utf8');
  const store = new ServerStore(ctx.home.root);
  const provider = createProvider(settings, { source: 'grid.provider', known: store.all() });
  ctx.log(`grid: ${provider.name} servers of ${grid.size}, ${grid.min} to ${grid.max}`);
  return GridCluster.open({
    home: ctx.home.root, etcd: ctx.etcd, local: ctx.docker, provider, privateKey, log: ctx.log,
    settings: { min: grid.min, max: grid.max, size: grid.size },
    ...(ctx.onJoin && { onJoin: ctx.onJoin }),
  });
}

/**
 * HQ's own quarry key: `<home>/keys/quarry` (0600) and `quarry.pub`, made the first time.
 * Servers let HQ in with it (the docker and DigitalOcean providers put its public half on the
 * servers they make; a static machine needs it in root's authorized_keys).
 */
export function quarryKey(home: HomeLayout, log: (line: string) => void): string {
  const file = join(home.keysDir, 'quarry');
  if (!existsSync(file)) {
    home.ensure(home.keysDir);
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'quarry-hq' });
    atomicWrite(file, pair.private, 0o600);
    atomicWrite(`${file}.pub`, `${pair.public}\n`, 0o644);
    log(`grid: made the quarry key ${file}; servers let HQ in with ${file}.pub`);
  }
  return readFileSync(file, 'utf8');
}
