import type Docker from 'dockerode';
import type { HqConfig } from '../config.js';

/**
 * The address a grid's servers reach HQ at (its etcd, for their agents): `grid.advertise`, or
 * for the docker provider the gateway of its servers' network (this machine, as they see it),
 * made now when missing, the way the provider makes it. Undefined: no address is known, and the
 * servers run without agents.
 */
export async function gridAdvertise(grid: NonNullable<HqConfig['grid']>, docker: Docker): Promise<string | undefined> {
  if (grid.advertise !== undefined) return grid.advertise;
  const settings = grid.provider as { provider: string; fleet?: string; network?: string };
  if (settings.provider !== 'docker') return undefined;
  const fleet = settings.fleet ?? 'default';
  const name = settings.network ?? `quarry-pacific-${fleet}`;
  const network = docker.getNetwork(name);
  let info: { IPAM?: { Config?: Array<{ Gateway?: string }> } };
  try {
    info = await network.inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    await docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: { 'quarry.pacific.fleet': fleet } }).catch((e: { statusCode?: number }) => {
      if (e.statusCode !== 409) throw e;
    });
    info = await network.inspect();
  }
  return info.IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
}
