// What the elastic fixture's source and sink print each second (test/fixtures/elastic), shared
// by the tests and bench:elastic that read them.

/** `{"feed": …}`: the source's state (`sending`, `done`) and the logs it has made. */
export interface Feed { state: string; sent: number; at: number }

/** `{"count": …}`: what the sink counted; `overlaps` are keys handled by two members at once. */
export interface Count { total: number; distinct: number; duplicates: number; outOfOrder: number; maxId: number; overlaps: number; at: number }

/** What the source had sent at `at` (ms), between its lines before and after; undefined outside them. */
export function sentAt(feeds: Feed[], at: number): number | undefined {
  const i = feeds.findIndex((f) => f.at >= at);
  if (i <= 0) return i === 0 && feeds[0]!.at === at ? feeds[0]!.sent : undefined;
  const a = feeds[i - 1]!;
  const b = feeds[i]!;
  return a.sent + ((b.sent - a.sent) * (at - a.at)) / (b.at - a.at);
}
