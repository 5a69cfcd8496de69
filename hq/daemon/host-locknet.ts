import type { Etcd3 } from 'etcd3';
import { locknetApplier, startLocknetSync, type LocknetSync } from '../../launcher/index.js';

/**
 * locknet on HQ's own host (`"locknet": true` in HQ's config): the grid's members reach every
 * port, anyone reaches `publicPorts`. It follows `/quarry/network/hosts/` as the agents do,
 * and its rules stay in force when HQ stops (`quarry locknet flush` removes them).
 */
export async function startHostLocknet(options: { etcd: Etcd3; publicPorts: number[]; log: (line: string) => void }): Promise<LocknetSync> {
  const publicPorts = [...new Set(options.publicPorts)].sort((a, b) => a - b);
  const sync = startLocknetSync({ etcd: options.etcd, apply: locknetApplier(publicPorts), publicPorts, log: options.log });
  await Promise.race([sync.ready, new Promise((r) => setTimeout(r, 10_000).unref())]);
  return sync;
}
