import type { AckToken } from './ack-token.js';
import type { Log } from './log.js';

/** Logs on their way to one member, with the acknowledgements that wait for them. */
export class OutBatch {
  readonly logs: Log[] = [];
  readonly tokens: AckToken[] = [];
  private lastToken: AckToken | undefined;
  private body: string | undefined;
  /** When the first log came (for the flush timer). */
  openedAt = 0;
  /**
   * Its place in the group's order of batches (set when opened; a copy made when it is spread
   * again keeps it): a batch given back waits again in this order, ahead of later ones.
   */
  order = 0;
  /** A hash spread's member index; -1 for round-robin. */
  constructor(readonly memberIndex = -1) {}

  add(log: Log, token: AckToken | undefined): void {
    this.logs.push(log);
    if (token !== undefined && token !== this.lastToken) {
      this.lastToken = token;
      if (!this.tokens.includes(token)) {
        this.tokens.push(token);
        token.hold();
      }
    }
  }

  /** The wire form, made once and kept for a resend. */
  encode(): string {
    return (this.body ??= JSON.stringify(this.logs));
  }

  /** Delivered (or given up): release every acknowledgement waiting on it. */
  settle(): void {
    for (const token of this.tokens) token.release();
    this.tokens.length = 0;
  }
}
