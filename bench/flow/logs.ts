/** The logs both sides of the benchmark carry, made the same way. */
export interface FlowLog {
  [field: string]: unknown;
  id: number;
  user: string;
  text: string;
  at: number;
}

const WORDS = ['quarry', 'stone', 'element', 'push', 'query', 'shard', 'batch', 'log'];

export function makeBatch(from: number, size: number): FlowLog[] {
  const out: FlowLog[] = new Array(size);
  for (let j = 0; j < size; j++) {
    const id = from + j;
    out[j] = { id, user: `u${id % 1000}`, text: `${WORDS[id % 8]} ${WORDS[(id >> 3) % 8]} ${WORDS[(id >> 6) % 8]}`, at: 1700000000000 + id };
  }
  return out;
}

/** The map stage's work on one log. */
export function mapLog(log: FlowLog): FlowLog {
  return { ...log, words: log.text.split(' ').length };
}

/** A wall-clock time in ms with sub-ms precision, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'flow', ...line })}\n`);
}
