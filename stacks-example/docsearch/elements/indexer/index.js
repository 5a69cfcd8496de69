// An inverted index: word -> documents. Answers { q } with the documents holding every word.
import { element } from 'quarry/runtime';

const documents = new Map(); // path -> { path, category, size }
const postings = new Map(); // word -> Set(path)

const words = (text) => new Set(text.toLowerCase().match(/[a-z0-9]+/g) ?? []);

export default element({
  // Idempotent: indexing the same document twice gives the same index (at-least-once delivery).
  async onPush(_port, logs) {
    for (const { path, text, category, size } of logs) {
      documents.set(path, { path, category, size });
      for (const word of words(text)) {
        if (!postings.has(word)) postings.set(word, new Set());
        postings.get(word).add(path);
      }
    }
  },
  async onQuery(_port, { q }) {
    const wanted = [...words(String(q ?? ''))];
    if (wanted.length === 0) return [];
    const [first, ...rest] = wanted.map((w) => postings.get(w) ?? new Set());
    const hits = [...first].filter((path) => rest.every((set) => set.has(path)));
    return hits.sort().map((path) => documents.get(path));
  },
});
