/**
 * The default merge of a shard's answers to one query: arrays are concatenated, plain objects
 * merged (later members win on a shared key; numbers under the same key are added), and
 * anything else comes back as the list of answers. One answer is returned as it is.
 */
export function mergeAnswers(answers: unknown[]): unknown {
  if (answers.length === 1) return answers[0];
  if (answers.every(Array.isArray)) return (answers as unknown[][]).flat(1);
  if (answers.every(isPlainObject)) {
    const out: Record<string, unknown> = {};
    for (const answer of answers as Record<string, unknown>[]) {
      for (const [key, value] of Object.entries(answer)) {
        const prev = out[key];
        out[key] = typeof prev === 'number' && typeof value === 'number' ? prev + value : value;
      }
    }
    return out;
  }
  return answers;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
