import { QuarryError } from '../errors/index.js';

/** The root of slicegrid's errors: callers branch on the class, users read the message. */
export class SliceGridError extends QuarryError {}

/** An argument that can never be right: a size that is not a positive whole number of MB, an empty id, bad options. */
export class InvalidSliceGridArgumentError extends SliceGridError {}

/** A slice fits on no block and the grid may not grow: max reached, autosize off, or no `create` handler. */
export class SliceGridFullError extends SliceGridError {}

/** A slice is bigger than any block the grid has or would create. */
export class SliceTooLargeError extends SliceGridError {}

/** A slice id the grid does not hold. */
export class UnknownSliceError extends SliceGridError {
  constructor(readonly sliceId: string) {
    super(`no slice "${sliceId}" in the grid`);
  }
}

/** A block id the grid does not hold. */
export class UnknownBlockError extends SliceGridError {
  constructor(readonly blockId: string) {
    super(`no block "${blockId}" in the grid`);
  }
}

/** A slice or block id that is already taken. */
export class DuplicateIdError extends SliceGridError {}

/** addBlock above `max`, or removeBlock below `min`. */
export class SliceGridLimitError extends SliceGridError {}

/**
 * An event handler failed (the cloud said no, a container would not start). The grid undid
 * the steps of the call that had already happened, so it is as it was before the call;
 * `undoFailures` lists the undo steps that failed too, in which case the grid keeps what is
 * known to exist (a server that could not be destroyed stays a block).
 */
export class SliceGridHandlerError extends SliceGridError {
  constructor(
    readonly event: string,
    message: string,
    cause: unknown,
    readonly undoFailures: readonly unknown[] = [],
  ) {
    super(message, { cause });
  }
}

/** The grid file cannot be read, is not a grid, or cannot be written. */
export class SliceGridFileError extends SliceGridError {}
