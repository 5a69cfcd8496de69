import { DigitalOceanApiError, PacificError } from './errors.js';
import { messageOf } from './provider.js';

/** The parts of DigitalOcean's droplet model the driver reads. */
export interface Droplet {
  id: number;
  name: string;
  memory: number;
  vcpus: number;
  disk: number;
  status: 'new' | 'active' | 'off' | 'archive';
  created_at: string;
  size_slug: string;
  image: { slug?: string | null; name?: string; id?: number };
  region: { slug: string };
  tags: string[];
  networks: { v4?: Array<{ ip_address: string; type: 'public' | 'private' }> };
}

export interface Action {
  id: number;
  status: 'in-progress' | 'completed' | 'errored';
  type: string;
  resource_id: number | null;
}

export interface ApiOptions {
  baseUrl: string;
  token: string;
  maxRetries: number;
  /** Where waits are shown; the token is never part of a message. */
  progress: (message: string) => void;
  /** For tests: how to wait. Default: a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** For tests: the clock, in ms. */
  now?: () => number;
}

const timer = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Epoch-seconds ratelimit-reset as a wait in ms from now, at least 0 and at most an hour. */
export function waitUntilReset(reset: string | null, nowMs: number): number {
  const seconds = Number(reset);
  if (reset === null || !Number.isFinite(seconds)) return 1000;
  return Math.min(3600_000, Math.max(0, seconds * 1000 - nowMs));
}

/** `retry-after` (seconds, or an HTTP date) as ms; null when absent or unreadable. */
export function retryAfterMs(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}

/**
 * The next page of a paginated list: `links.pages.next`, when it is on the API's own origin
 * (the token goes with it, so it never follows a link elsewhere).
 */
export function nextPage(body: unknown, baseUrl: string): string | null {
  const next = (body as { links?: { pages?: { next?: unknown } } } | null)?.links?.pages?.next;
  if (typeof next !== 'string') return null;
  const url = new URL(next, baseUrl);
  if (url.origin !== new URL(baseUrl).origin) {
    throw new PacificError(`DigitalOcean's next page ${url.origin}${url.pathname} is not on ${new URL(baseUrl).origin}; not following it with the token`);
  }
  return url.href;
}

/**
 * DigitalOcean API v2 over fetch. Every request honours the rate limit: when a response says
 * no request is left (`ratelimit-remaining: 0`), the next one waits for `ratelimit-reset`;
 * a 429 is retried after `retry-after` (or the reset), up to `maxRetries` times. A refusal
 * becomes a DigitalOceanApiError with DigitalOcean's own `id` and `message`.
 */
export class DigitalOceanApi {
  private resumeAt = 0;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(private readonly options: ApiOptions) {
    this.sleep = options.sleep ?? timer;
    this.now = options.now ?? Date.now;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.options.baseUrl).href;
    const shown = `${method} ${new URL(url).pathname}`;
    for (let attempt = 0; ; attempt++) {
      const wait = this.resumeAt - this.now();
      if (wait > 0) {
        this.options.progress(`DigitalOcean's rate limit is used up; waiting ${Math.ceil(wait / 1000)} s until it resets`);
        await this.sleep(wait);
      }
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${this.options.token}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(60_000),
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code;
        throw new PacificError(`DigitalOcean did not answer ${shown} at ${new URL(url).origin}: ${cause ?? messageOf(error)}`, { cause: error });
      }
      const remaining = response.headers.get('ratelimit-remaining');
      if (remaining !== null && Number(remaining) <= 0) {
        this.resumeAt = this.now() + waitUntilReset(response.headers.get('ratelimit-reset'), this.now());
      }
      const text = await response.text();
      if (response.status === 429 && attempt < this.options.maxRetries) {
        const after = retryAfterMs(response.headers.get('retry-after'), this.now())
          ?? waitUntilReset(response.headers.get('ratelimit-reset'), this.now());
        this.options.progress(`DigitalOcean answered 429 (too many requests) to ${shown}; retrying in ${Math.ceil(after / 1000)} s (${attempt + 1} of ${this.options.maxRetries})`);
        await this.sleep(after);
        continue;
      }
      if (!response.ok) throw apiError(shown, response, text);
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new PacificError(`DigitalOcean answered ${shown} with something that is not JSON (HTTP ${response.status})`);
      }
    }
  }

  /** Every item of a paginated list, following `links.pages.next`. */
  async all<T>(path: string, key: string): Promise<T[]> {
    const items: T[] = [];
    let next: string | null = path;
    while (next !== null) {
      const body: Record<string, unknown> = await this.request('GET', next);
      const page = body[key];
      if (!Array.isArray(page)) throw new PacificError(`DigitalOcean's answer to GET ${new URL(next, this.options.baseUrl).pathname} has no "${key}" list`);
      items.push(...(page as T[]));
      next = nextPage(body, this.options.baseUrl);
    }
    return items;
  }
}

function apiError(request: string, response: Response, text: string): DigitalOceanApiError {
  let id = `http_${response.status}`;
  let message = response.statusText || 'no message';
  let requestId: string | undefined = response.headers.get('x-request-id') ?? undefined;
  try {
    const body = JSON.parse(text) as { id?: unknown; message?: unknown; request_id?: unknown };
    if (typeof body.id === 'string') id = body.id;
    if (typeof body.message === 'string') message = body.message;
    if (typeof body.request_id === 'string') requestId = body.request_id;
  } catch {
    // Not DigitalOcean's error body (a proxy's page): keep the status.
  }
  return new DigitalOceanApiError(request, response.status, id, message, requestId);
}
