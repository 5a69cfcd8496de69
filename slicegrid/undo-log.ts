/**
 * The steps of one grid call that already happened, each with its inverse (a block that
 * was created is destroyed, a slice that was added is removed). When a later step fails,
 * the inverses run newest first so that the grid is as it was before the call.
 */
export class UndoLog {
  private readonly steps: Array<() => void | Promise<void>> = [];

  push(undo: () => void | Promise<void>): void {
    const steps = this.steps;
    steps[steps.length] = undo;
  }

  /** Drops the inverses: what the call did so far stands whatever happens next (a destroy was done). */
  forget(): void {
    this.steps.length = 0;
  }

  /** Runs every inverse, newest first, and returns the failures (the rest still run). */
  async rollback(): Promise<unknown[]> {
    const failures: unknown[] = [];
    for (let i = this.steps.length - 1; i >= 0; i--) {
      try {
        await this.steps[i]!();
      } catch (error) {
        failures.push(error);
      }
    }
    this.steps.length = 0;
    return failures;
  }
}
