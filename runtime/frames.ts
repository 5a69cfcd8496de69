/**
 * The first frame of every message says what it is (one ASCII letter). Push connections are
 * DEALER (producer) to ROUTER (consumer); query connections too. The ROUTER side sees the
 * peer's routing id before these frames.
 *
 *   producer → consumer   B seq body     a batch: body is a JSON array of logs
 *   producer → consumer   P window batch features
 *                                        probe, sent on every new connection: the producer's
 *                                        window (`queue`, batches), `batch` (logs), and what it
 *                                        understands (`N`: it takes NACKs; absent in older ones)
 *   consumer → producer   H incarnation  hello, the answer to a probe
 *   consumer → producer   A seq          the batch is handled and acknowledged
 *   consumer → producer   N seq          not handled, given back (NACK): the consumer shed its
 *                                        queue (re-sharding). From the first NACK on, the
 *                                        consumer gives back every batch of that connection
 *                                        until the producer's `C`
 *   producer → consumer   C seq          continue: the producer has taken back what came with
 *                                        `N seq` and what it sent before; batches after this
 *                                        are new (a `C` older than the consumer's first NACK
 *                                        is ignored)
 *   asker → answerer      Q id body      a query: body is JSON
 *   answerer → asker      R id body      its answer (JSON)
 *   answerer → asker      E id message   its handler failed
 */
export const BATCH = 0x42; // B
export const ACK = 0x41; // A
export const HELLO = 0x48; // H
export const PROBE = 0x50; // P
export const NACK = 0x4e; // N
export const CONTINUE = 0x43; // C
export const QUERY = 0x51; // Q
export const REPLY = 0x52; // R
export const FAILURE = 0x45; // E

/** The probe's features frame of a producer that takes NACKs. */
export const FEATURE_NACK = 'N';

/** The kind letter of a message's first frame, or 0 for an empty frame. */
export function kindOf(frame: Buffer | undefined): number {
  return frame === undefined || frame.length === 0 ? 0 : (frame[0] as number);
}
