import type { Response } from 'express';

/**
 * An NDJSON answer whose status line waits for its first line: an operation that fails
 * before it has said anything still gets a proper error status (404 for an unknown stack),
 * while one that fails midway ends its stream with a line saying so.
 */
export class NdjsonAnswer {
  private started = false;

  constructor(private readonly res: Response) {}

  /** Whether a line was sent (the status is then 200, whatever comes). */
  get streaming(): boolean {
    return this.started;
  }

  write(value: unknown): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.started) {
      this.started = true;
      this.res.status(200);
      this.res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
      this.res.setHeader('Cache-Control', 'no-store');
      // Lines go out as they come, not when a buffer fills.
      this.res.setHeader('X-Accel-Buffering', 'no');
      this.res.flushHeaders();
      this.res.socket?.setNoDelay(true);
    }
    this.res.write(`${JSON.stringify(value)}\n`);
  }

  end(): void {
    if (!this.started && !this.res.headersSent) {
      this.started = true;
      this.res.status(200).setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    }
    if (!this.res.writableEnded) this.res.end();
  }
}
