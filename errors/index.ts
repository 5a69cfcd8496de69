/**
 * The root of quarry's error classes. Errors a user can cause (a bad file, a bad setting, a
 * refused request) extend QuarryError: the command line prints their message alone, without
 * a stack, and exits with `exitCode`. Anything else is a bug and is printed whole.
 */
export class QuarryError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A command line that cannot be understood: unknown command, flag or argument. */
export class UsageError extends QuarryError {
  override readonly exitCode = 2;
}
