import type { Etcd3 } from 'etcd3';
import { keys } from '../../launcher/index.js';
import { hostsBlock, membershipChanges, networkHosts, type NetworkHost } from '../../plan/index.js';
import { StackLocks } from '../stack-lock.js';

/**
 * The grid's membership in etcd, as HQ keeps it: `/quarry/network/hosts/<id>` (`{"id","ip"}`)
 * for HQ's host and every server, which every server's firewall lets in (locknet), and the
 * `/etc/hosts` block every server keeps (`/quarry/config/files/etc/hosts`). HQ writes it when
 * a server joins (before anything starts on it) and when one leaves; the agents follow it.
 */
export class Membership {
  private readonly gate = new StackLocks();

  /** `hq`: HQ's address as the servers see it (`grid.advertise`). */
  constructor(private readonly etcd: Etcd3, private readonly hq: string | undefined) {}

  /** Makes etcd's records those of `servers` (and HQ's host); returns the members now. */
  async sync(servers: readonly { id: string; address: string }[]): Promise<NetworkHost[]> {
    const unlock = await this.gate.acquire('membership');
    try {
      const wanted = networkHosts({ ...(this.hq !== undefined && { hq: this.hq }), servers });
      const found = await this.etcd.getAll().prefix(keys.networkHosts).strings();
      const current = new Map(Object.entries(found).map(([key, value]) => [key.slice(keys.networkHosts.length), value]));
      const { put, remove } = membershipChanges(current, wanted);
      // Let the new ones in before anyone else is shut out, and the hosts file last.
      for (const host of put) await this.etcd.put(keys.networkHost(host.id)).value(JSON.stringify(host));
      for (const id of remove) await this.etcd.delete().key(keys.networkHost(id));
      const block = hostsBlock(wanted);
      if ((await this.etcd.get(keys.hostsFile).string()) !== block) await this.etcd.put(keys.hostsFile).value(block);
      return wanted;
    } finally {
      unlock();
    }
  }
}
