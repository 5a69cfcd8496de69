import { request } from 'node:http';

/**
 * GET a URL with node:http and a deadline. (Node 20's fetch can leave a promise pending
 * with nothing keeping the process alive when a connection is accepted and dropped, as
 * docker's port proxy does while the container's server is still starting.)
 */
export function httpGet(url: string, timeoutMs = 2000, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** GET until it answers (a server that is starting), up to a deadline. */
export async function httpGetWhenUp(url: string, deadlineMs = 20_000, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await httpGet(url, 2000, headers);
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
