/**
 * Which member of a shard a log goes to by a field's hash: rendezvous (highest random weight)
 * hashing over the members' stable ids, so adding or removing a member moves only the keys
 * that member gains or loses, and every producer picks the same member for the same value.
 */
export function memberForKey(value: unknown, memberHashes: readonly number[]): number {
  const key = fnv1a(typeof value === 'string' ? value : JSON.stringify(value) ?? 'undefined');
  let best = 0;
  let bestWeight = -1;
  for (let i = 0; i < memberHashes.length; i++) {
    const weight = mix(key ^ (memberHashes[i] as number));
    if (weight > bestWeight) {
      best = i;
      bestWeight = weight;
    }
  }
  return best;
}

/** FNV-1a, 32 bits, over a string's UTF-16 code units: stable across processes and versions. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser: spreads the bits of a 32-bit value. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
