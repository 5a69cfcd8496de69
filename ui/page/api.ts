// The dashboard's calls: the same /v1 routes as the command line (cli/client.ts), with the
// session cookie instead of the token, and `X-Quarry-UI: 1` on every change (docs/hq.md).
import type { ApiErrorBody, LogLine, OperationLine, ReleaseInfo, SessionBody } from '../../hq/index.js';

/** HQ does not know this session (never logged in, logged out, expired, HQ restarted). */
export class SessionEndedError extends Error {}

/** HQ answered a call with an error: its message, written for the user. */
export class HqAnswerError extends Error {}

const PAGE_HEADERS = { 'X-Quarry-UI': '1' };

async function failure(res: Response): Promise<Error> {
  let message = `HQ answered ${res.status}`;
  try {
    message = ((await res.json()) as ApiErrorBody).error.message;
  } catch {
    // not JSON: keep the status
  }
  return res.status === 401 ? new SessionEndedError(message) : new HqAnswerError(message);
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store', ...(signal && { signal }) });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export async function session(): Promise<boolean> {
  return (await getJson<SessionBody>('/ui/session')).loggedIn;
}

/** Trades the token for a session cookie; the token goes in the body, never in a URL. */
export async function login(token: string): Promise<void> {
  const res = await fetch('/ui/session', {
    method: 'POST', credentials: 'same-origin', headers: { ...PAGE_HEADERS, 'Content-Type': 'application/json' }, body: JSON.stringify({ token }),
  });
  if (!res.ok) throw await failure(res);
}

export async function logout(): Promise<void> {
  await fetch('/ui/session', { method: 'DELETE', credentials: 'same-origin', headers: PAGE_HEADERS });
}

/** Reads an NDJSON answer line by line as it comes. */
async function readLines(res: Response, onLine: (value: unknown) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line !== '') onLine(JSON.parse(line));
    }
  }
  if (buffered.trim() !== '') onLine(JSON.parse(buffered));
}

/** A long operation (scale, rollback): its progress lines as they come, then its release. */
export async function operate(path: string, body: unknown, onProgress: (text: string) => void): Promise<ReleaseInfo> {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin', headers: { ...PAGE_HEADERS, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  let result: ReleaseInfo | undefined;
  let failed: string | undefined;
  await readLines(res, (value) => {
    const line = value as OperationLine;
    if ('result' in line) result = line.result;
    else if ('failed' in line) failed = line.failed.message;
    else if ('step' in line) onProgress(line.step);
    else if ('info' in line) onProgress(line.info);
    else if ('error' in line) onProgress(line.error);
  });
  if (failed !== undefined) throw new HqAnswerError(failed);
  if (result === undefined) throw new HqAnswerError('HQ ended the operation without a result');
  return result;
}

/** A node's logs, the last `tail` lines and then as they come, until `signal` aborts. */
export async function followLogs(stack: string, name: string, tail: number, onLine: (line: LogLine) => void, signal: AbortSignal): Promise<void> {
  const query = new URLSearchParams({ name, follow: 'true', tail: String(tail) });
  const res = await fetch(`/v1/stacks/${encodeURIComponent(stack)}/logs?${query}`, { credentials: 'same-origin', signal });
  if (!res.ok) throw await failure(res);
  await readLines(res, (value) => {
    const line = value as LogLine | { failed: { message: string } };
    if ('failed' in line) throw new HqAnswerError(line.failed.message);
    onLine(line);
  });
}

export const stackPath = (stack: string) => `/v1/stacks/${encodeURIComponent(stack)}`;
