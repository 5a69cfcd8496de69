import type { Etcd3 } from 'etcd3';

/**
 * The values under each stack's prefix (one prefix read per stack, all at once), bounded by
 * `withinMs`: etcd3's calls wait and retry while etcd is away, and `ps` and `top` must answer
 * anyway. A stack whose values did not come in time (or could not be read) maps to undefined;
 * a read that fails or finishes after the race is never unhandled.
 */
export async function readStacksWithin(etcd: Etcd3, stacks: string[], prefixOf: (stack: string) => string, withinMs: number): Promise<Map<string, string[] | undefined>> {
  const out = new Map<string, string[] | undefined>(stacks.map((s) => [s, undefined]));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, withinMs); });
  const reads = stacks.map(async (stack) => {
    const values = await etcd.getAll().prefix(prefixOf(stack)).options({ deadline: Date.now() + withinMs }).strings();
    out.set(stack, Object.values(values));
  });
  await Promise.race([Promise.allSettled(reads), late]);
  clearTimeout(timer);
  return new Map(out);
}
