/**
 * The restart policy of a unit's containers, and the decision a caretaker makes when one of
 * them dies (pure: the caretaker on each server carries it out, the runner does the same for
 * `quarry run`). In the way of Nomad's `restart` block and Kubernetes' back-off: the first
 * restart is at once; each later one waits twice as long as the one before (from `delayMs`,
 * at most `maxDelayMs`); a container restarted `attempts` times within `intervalMs` that dies
 * again is marked failed and left stopped.
 */
export interface RestartPolicy {
  /** Restarts allowed within `intervalMs` before the container is marked failed. */
  attempts: number;
  /** The window restarts are counted in, ms. */
  intervalMs: number;
  /** The wait before the second restart, ms; doubled for each one after it. */
  delayMs: number;
  /** The longest wait, ms. */
  maxDelayMs: number;
}

/** 5 restarts in 5 minutes, waiting 0, 1, 2, 4, 8 s: a crash loop is marked failed after about 15 s of trying. */
export const DEFAULT_RESTART: RestartPolicy = { attempts: 5, intervalMs: 300_000, delayMs: 1000, maxDelayMs: 60_000 };

export type RestartDecision =
  | { action: 'restart'; delayMs: number; /** 1-based: the how-manieth restart within the window this is. */ attempt: number }
  | { action: 'fail'; reason: string };

/**
 * What to do about a container that died at `now`, given the times (ms) of the restarts it
 * has had already. Restarts older than the window no longer count, so a container that
 * crashes now and then is always restarted at once.
 */
export function restartDecision(previous: readonly number[], policy: RestartPolicy, now: number): RestartDecision {
  const recent = previous.filter((t) => t > now - policy.intervalMs && t <= now).length;
  if (recent >= policy.attempts) {
    return { action: 'fail', reason: `it died ${recent + 1} times within ${formatMs(policy.intervalMs)} (restart: attempts ${policy.attempts})` };
  }
  // The exponent is capped: 2 ** 1024 is Infinity, and 0 * Infinity (a delay of 0) is NaN.
  const delayMs = recent === 0 ? 0 : Math.min(policy.maxDelayMs, policy.delayMs * 2 ** Math.min(recent - 1, 52));
  return { action: 'restart', delayMs, attempt: recent + 1 };
}

/** The container label that carries the policy: `attempts/intervalMs/delayMs/maxDelayMs`. */
export function restartLabel(policy: RestartPolicy): string {
  return `${policy.attempts}/${policy.intervalMs}/${policy.delayMs}/${policy.maxDelayMs}`;
}

/** The policy a label names; the default for a container without one (or a label not understood). */
export function parseRestartLabel(label: string | undefined): RestartPolicy {
  if (label === undefined) return DEFAULT_RESTART;
  const texts = label.split('/');
  // Plain decimal digits only: Number() would also take '' (as 0), ' 5', '0x10' and '1e3'.
  if (texts.length !== 4 || texts.some((p) => !/^\d{1,15}$/.test(p))) return DEFAULT_RESTART;
  const parts = texts.map((p) => Number(p));
  const [attempts, intervalMs, delayMs, maxDelayMs] = parts as [number, number, number, number];
  return { attempts, intervalMs, delayMs, maxDelayMs };
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
