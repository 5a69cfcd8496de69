import { QuarryError } from '../errors/index.js';

/** A membership file or a port list that cannot be used: nothing was changed. */
export class LocknetInputError extends QuarryError {}

/** The rules or sets could not be put in force (or read back): those in force before stay. */
export class LocknetApplyError extends QuarryError {}
