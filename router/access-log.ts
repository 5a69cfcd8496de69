import { createWriteStream, type WriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** A CLF time, in UTC: `10/Oct/2000:13:55:36 +0000`. */
export function clfTime(date: Date): string {
  return `${two(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}

/** A client's text made safe for one log line: quotes, backslashes and control bytes escaped. */
function escaped(text: string): string {
  return text.replace(/["\\\x00-\x1f\x7f-\xff]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/**
 * The access log: one line per request, in Common Log Format followed by the backend
 * (`host:port`, or `-` when the router answered itself) and the time taken in milliseconds:
 *
 *     203.0.113.7 - - [10/Oct/2024:13:55:36 +0000] "GET /cart?id=3 HTTP/1.1" 200 2326 10.0.0.5:32768 12
 *
 * It records the request line and the answer, never a header (so no Cookie, no
 * Authorization: the user field is always `-`) and never a body. A client that went away
 * before any answer is logged with status 499, as nginx does; an upgrade that went through
 * with 101 and `-` bytes, when the backend answered it.
 */
export class AccessLog {
  private readonly stream: WriteStream | undefined;
  private readonly write: (line: string) => void;

  /** `where` is `stderr`, a file path (appended to, created if need be), or a function taking each line. */
  constructor(where: string | ((line: string) => void)) {
    if (typeof where === 'function') this.write = where;
    else if (where === 'stderr') this.write = (line) => process.stderr.write(line);
    else {
      const stream = createWriteStream(where, { flags: 'a' });
      stream.on('error', (err) => process.stderr.write(`quarry router: access log ${where}: ${err.message}\n`));
      this.stream = stream;
      this.write = (line) => stream.write(line);
    }
  }

  /** `client` is the peer's address, taken while the request's socket is still attached. */
  request(client: string | undefined, req: IncomingMessage, status: number, bytes: number | undefined,
    upstream: string | undefined, ms: number): void {
    const line = `${client ?? '-'} - - [${clfTime(new Date())}] ` +
      `"${escaped(`${req.method} ${req.url} HTTP/${req.httpVersion}`)}" ${status === 0 ? 499 : status} ` +
      `${bytes ? bytes : '-'} ${upstream ?? '-'} ${Math.round(ms)}\n`;
    this.write(line);
  }

  close(): Promise<void> {
    const stream = this.stream;
    if (!stream) return Promise.resolve();
    return new Promise((resolve) => stream.end(resolve));
  }
}
