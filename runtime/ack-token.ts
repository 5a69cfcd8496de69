/**
 * The acknowledgement of one received batch, held back until the batch's handler has finished
 * and every log it emitted has been acknowledged downstream. So a middle element that dies
 * with logs still in its queues has acknowledged none of them, and its producers send them
 * again: nothing is lost along a chain.
 */
export class AckToken {
  private pending = 1;

  constructor(private readonly ack: () => void) {}

  /** One more out batch carries a log of this batch. */
  hold(): void {
    this.pending++;
  }

  /** The handler finished, or an out batch carrying a log of this batch was acknowledged. */
  release(): void {
    if (--this.pending === 0) this.ack();
  }
}
