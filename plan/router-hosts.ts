/**
 * Which of a grid's servers are router hosts (docs/hq.md, "Router hosts"), as a pure plan:
 * what HQ sees of each server goes in, which servers to mark and which to unmark comes out.
 * A router host runs `quarry router` on its ports 80 and 443; HQ marks one with a slice of
 * the router's memory in slicegrid (so the mark is kept in `grid/grid.json`, survives a kill
 * of HQ, and an emptied router host is never removed as empty).
 */

/** What HQ sees of one server of the grid, for choosing router hosts. */
export interface RouterHostSight {
  id: string;
  /** It is a router host now (it holds a router slice). */
  router: boolean;
  /** slicegrid's tags of its block: a block tagged `router` is kept free for routers. */
  tags: readonly string[];
  /** Its containers (slices other than the router's). */
  containers: number;
  /** MB free in its block. */
  free: number;
  /** Its engine answers now and it is in placement (not lost, not drained): a router may go there. */
  ready: boolean;
}

export interface RouterHostsPlan {
  /** Servers to make router hosts, best first. */
  mark: string[];
  /** Router hosts to give up (more than wanted). */
  unmark: string[];
  /** Router hosts still wanted for which no ready server has `size` MB free (the grid must grow for them). */
  short: number;
}

/**
 * The router hosts a grid should have: `wanted` of them (`grid.routers`), never more than it
 * has servers. Hosts there are stay, ready or not (one that does not answer is the heal loop's:
 * it is lost or it comes back). New ones are the ready servers with room for the router's
 * slice (`size` MB): a block slicegrid tagged `router` first, then the one with the fewest
 * containers, then the most free memory, then by id. Extra hosts go last-marked-first, which
 * here is the one with the most containers (its memory is the likeliest to be wanted).
 */
export function routerHostsPlan(servers: readonly RouterHostSight[], wanted: number, size: number): RouterHostsPlan {
  const target = Math.max(0, Math.min(wanted, servers.length));
  const hosts = servers.filter((s) => s.router);
  if (hosts.length > target) {
    const extra = [...hosts].sort((a, b) => b.containers - a.containers || b.id.localeCompare(a.id)).slice(0, hosts.length - target);
    return { mark: [], unmark: extra.map((s) => s.id), short: 0 };
  }
  const missing = target - hosts.length;
  const candidates = servers
    .filter((s) => !s.router && s.ready && s.free >= size)
    .sort((a, b) => Number(b.tags.includes('router')) - Number(a.tags.includes('router'))
      || a.containers - b.containers || b.free - a.free || a.id.localeCompare(b.id));
  const mark = candidates.slice(0, missing).map((s) => s.id);
  return { mark, unmark: [], short: missing - mark.length };
}
