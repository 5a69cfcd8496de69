import { element } from '../../../../runtime/index.js';

/**
 * Keeps the paths of each category and answers `{category}` with its paths, or `{}` with the
 * count per category. Keyed by path, so a redelivered log changes nothing (idempotent).
 */
const byCategory = new Map<string, Set<string>>();

export default element({
  onPush(_port, logs) {
    for (const { path, category } of logs as { path: string; category: string }[]) {
      let paths = byCategory.get(category);
      if (paths === undefined) byCategory.set(category, (paths = new Set()));
      paths.add(path);
    }
  },
  onQuery(_port, request: { category?: string }) {
    if (request.category !== undefined) return [...(byCategory.get(request.category) ?? [])].sort();
    return Object.fromEntries([...byCategory].map(([category, paths]) => [category, paths.size]));
  },
});
