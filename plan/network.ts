import { isIP } from 'node:net';

/**
 * A host locknet lets in (the value under `/quarry/network/hosts/<id>`): HQ's host, every
 * server of the grid, every router host.
 */
export interface NetworkHost {
  id: string;
  ip: string;
}

/** The id HQ's own host has among the grid's hosts. */
export const HQ_HOST_ID = 'hq';

/** What the grid is made of, as the membership follows it. */
export interface GridHosts {
  /** HQ's address as the servers see it (`grid.advertise`); none: HQ is not a member. */
  hq?: string;
  /** Every server record: its id and address. */
  servers: readonly { id: string; address: string }[];
}

/**
 * The grid's members: HQ's host (as `hq`) and every server with an address that is an IP
 * (a host name cannot be put in an ipset), sorted by id.
 */
export function networkHosts(grid: GridHosts): NetworkHost[] {
  const hosts = new Map<string, NetworkHost>();
  if (grid.hq !== undefined && isIP(grid.hq) !== 0) hosts.set(HQ_HOST_ID, { id: HQ_HOST_ID, ip: grid.hq });
  for (const server of grid.servers) {
    if (isIP(server.address) !== 0) hosts.set(server.id, { id: server.id, ip: server.address });
  }
  return [...hosts.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * The block of `/etc/hosts` every server keeps (`/quarry/config/files/etc/hosts`): one
 * `ip name` line per member, in id order, so that servers reach each other (and HQ, as `hq`)
 * by name.
 */
export function hostsBlock(hosts: readonly NetworkHost[]): string {
  return hosts.map((h) => `${h.ip} ${h.id}\n`).join('');
}

/** The puts and deletes that make the records under a prefix (id → JSON) equal to `wanted`. */
export function membershipChanges(current: ReadonlyMap<string, string>, wanted: readonly NetworkHost[]): {
  put: NetworkHost[];
  remove: string[];
} {
  const want = new Map(wanted.map((h) => [h.id, h]));
  const put = wanted.filter((h) => current.get(h.id) !== JSON.stringify(h));
  const remove = [...current.keys()].filter((id) => !want.has(id)).sort();
  return { put, remove };
}
