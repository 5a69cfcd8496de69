import { useEffect, useState } from 'preact/hooks';

/**
 * Reads `load` now and every `everyMs` while the view is shown; the last answer, the last
 * error's message, and `reload` to read again at once (after a change).
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, everyMs: number, onError: (err: unknown) => void, deps: unknown[] = []) {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const stop = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const round = async () => {
      try {
        const v = await load(stop.signal);
        if (stop.signal.aborted) return;
        setValue(v);
        setError(undefined);
      } catch (err) {
        if (stop.signal.aborted) return;
        setError((err as Error).message);
        onError(err);
      }
      if (!stop.signal.aborted) timer = setTimeout(round, everyMs);
    };
    void round();
    return () => {
      stop.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [tick, ...deps]);
  return { value, error, reload: () => setTick((n) => n + 1) };
}
