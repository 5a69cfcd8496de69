/** Asks `check` every 100 ms until it gives a value, failing with `what` after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting (${timeoutMs / 1000} s): ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
