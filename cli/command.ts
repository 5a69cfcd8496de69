/** One subcommand of `quarry`: its one-line summary, usage, and what it does. */
export interface Command {
  summary: string;
  usage: string;
  /** Runs the command; resolves with the process exit code. */
  run(argv: string[], io: CommandIO): Promise<number>;
}

/** Where a command writes: the process's streams in real use, buffers in tests. */
export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** What a command reads (`quarry env STACK set --stdin`); default: none. */
  stdin?: NodeJS.ReadableStream;
  cwd: string;
  env: NodeJS.ProcessEnv;
}
