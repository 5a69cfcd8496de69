// Tags each document with the category whose words it uses most. Stateless: safe to shard.
import { element } from 'quarry/runtime';

const CATEGORIES = {
  nature: ['river', 'rivers', 'sea', 'valley', 'valleys', 'delta', 'deltas', 'sediment'],
  computing: ['container', 'containers', 'server', 'servers', 'network', 'process', 'processes', 'request'],
  cooking: ['bread', 'flour', 'yeast', 'oven', 'bake', 'loaf', 'salt', 'sourdough'],
};

export function categorize(text) {
  const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
  let best = 'other';
  let bestScore = 0;
  for (const [category, vocabulary] of Object.entries(CATEGORIES)) {
    const score = words.filter((w) => vocabulary.includes(w)).length;
    if (score > bestScore) [best, bestScore] = [category, score];
  }
  return best;
}

export default element({
  async onPush(_port, logs, { emit }) {
    for (const log of logs) await emit('out', { ...log, category: categorize(log.text) });
  },
});
