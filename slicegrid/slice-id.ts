/**
 * quarry names a container's slice `<stack>.<name>.<n>`; the replicas of one node share
 * everything but `<n>`, and that prefix is the group slicegrid spreads over blocks.
 */

/** The group a slice id implies: `shop.web.3` → `shop.web`; an id without `.<n>` → null. */
export function groupOf(id: string): string | null {
  const end = groupEnd(id);
  return end < 0 ? null : id.slice(0, end);
}

/**
 * `groupOf` for the grid's own slices: the replicas of a node come one after another (a
 * push lists them so), and each gets the string the one before it got, not a copy: one
 * string less per replica, and the grid's lookups by group (a few per slice placed) find
 * it at once instead of comparing it character by character.
 */
export function sharedGroupOf(id: string): string | null {
  const end = groupEnd(id);
  if (end < 0) return null;
  const last = lastGroup;
  if (last !== null && last.length === end && id.startsWith(last)) return last;
  return (lastGroup = id.slice(0, end));
}

let lastGroup: string | null = null;

/**
 * Where the group ends in an id (the dot before `<n>`), or -1: what `/^(.+)\.\d+$/` captures,
 * read by hand. It runs for every slice placed, and a regular expression, `lastIndexOf` and
 * a second `slice` cost several times this loop.
 */
function groupEnd(id: string): number {
  // `<n>`: the digits at the end, at least one.
  const last = id.length - 1;
  let dot = last;
  while (dot >= 0 && isDigit(id.charCodeAt(dot))) dot--;
  // Then the dot before them (the last dot: `<n>` has none), after a prefix of one character or more.
  if (dot === last || dot < 1 || id.charCodeAt(dot) !== 0x2e) return -1;
  // The `.` of the pattern matches no line terminator: a prefix with one is not a group.
  for (let i = 0; i < dot; i++) {
    const c = id.charCodeAt(i);
    if (c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029) return -1;
  }
  return dot;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The stack a slice id names: `shop.web.3` → `shop`. */
export function stackOf(id: string): string {
  const dot = id.indexOf('.');
  return dot < 0 ? id : id.slice(0, dot);
}
