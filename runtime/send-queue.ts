import type { Router } from 'zeromq';

type Frames = (Buffer | string)[];

/**
 * Sends on a ROUTER one message at a time, in order. zeromq.js allows one send in progress per
 * socket and throws EBUSY on a second, and acknowledgements and answers are sent from many
 * places (each handler's end, each acknowledged out batch) at once.
 */
export class SendQueue {
  private readonly queue: Frames[] = [];
  private sending = false;
  private closed = false;

  constructor(private readonly socket: Router) {}

  send(frames: Frames): void {
    if (this.closed) return;
    this.queue.push(frames);
    if (!this.sending) void this.loop();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private async loop(): Promise<void> {
    this.sending = true;
    try {
      while (!this.closed && this.queue.length > 0) await this.socket.send(this.queue.shift() as Frames);
    } catch {
      // The socket closed under us: the peer gets nothing more, and sends again what it must.
    } finally {
      this.sending = false;
    }
  }
}
