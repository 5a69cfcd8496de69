/**
 * quarry names a container's slice `<stack>.<name>.<n>`; the replicas of one node share
 * everything but `<n>`, and that prefix is the group slicegrid spreads over blocks.
 */
const REPLICA = /^.+\.\d+$/;

/** The group a slice id implies: `shop.web.3` → `shop.web`; an id without `.<n>` → null. */
export function groupOf(id: string): string | null {
  // The dot before `<n>` is the last one (`<n>` has none): no capture needed to find it.
  return REPLICA.test(id) ? id.slice(0, id.lastIndexOf('.')) : null;
}

/** The stack a slice id names: `shop.web.3` → `shop`. */
export function stackOf(id: string): string {
  const dot = id.indexOf('.');
  return dot < 0 ? id : id.slice(0, dot);
}
