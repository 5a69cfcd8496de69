import { QuarryError } from '../errors/index.js';

/** Where a fault is: a file of the stack (root-relative) and a 1-based line and column. */
export interface Position {
  file: string;
  line: number;
  col: number;
}

/** One thing wrong with a stack, at the place that must change. */
export interface Fault extends Position {
  message: string;
}

export function formatFault(fault: Fault, prefix = ''): string {
  return `${prefix}${fault.file}:${fault.line}:${fault.col}: ${fault.message}`;
}

/** Collects every fault of a compile, so that all are reported at once. */
export class FaultList {
  readonly faults: Fault[] = [];

  add(at: Position, message: string): void {
    this.faults.push({ file: at.file, line: at.line, col: at.col, message });
  }

  get size(): number {
    return this.faults.length;
  }

  /** Faults in reading order: by file, then line, then column. */
  sorted(): Fault[] {
    return [...this.faults].sort(
      (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col,
    );
  }
}

/** A stack that does not compile; `faults` holds each fault with its place. */
export class CompileError extends QuarryError {
  constructor(
    readonly faults: Fault[],
    /** Put before each file name when printed, e.g. the folder the user named. */
    readonly prefix = '',
  ) {
    const count = faults.length === 1 ? '1 error' : `${faults.length} errors`;
    super(`${faults.map((f) => formatFault(f, prefix)).join('\n')}\n${count}; nothing was changed`);
  }
}
