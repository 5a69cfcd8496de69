/**
 * A loop of rounds, one after another, each `intervalMs` after the last one began (or at once
 * when a round took longer): they never overlap. A round that throws is reported through
 * `onError` and the loop goes on. The timer does not keep the process alive.
 */
export interface Ticker {
  /** Stops the loop; resolves once a round under way has ended. */
  stop(): Promise<void>;
  /** Resolves once a round under way (if any) has ended. */
  idle(): Promise<void>;
}

export function startTicker(round: () => Promise<unknown>, intervalMs: number, onError: (err: unknown) => void,
  options: { firstAfterMs?: number } = {}): Ticker {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let working: Promise<void> | undefined;
  const next = (wait: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      const began = Date.now();
      working = Promise.resolve()
        .then(round)
        .then(() => undefined, onError)
        .finally(() => {
          working = undefined;
          next(Math.max(0, intervalMs - (Date.now() - began)));
        });
    }, wait);
    timer.unref();
  };
  next(options.firstAfterMs ?? intervalMs);
  const idle = async () => {
    while (working) await working;
  };
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await idle();
    },
    idle,
  };
}
