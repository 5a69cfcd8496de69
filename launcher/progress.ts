import { terminalSafe } from './terminal-text.js';

/**
 * What a push tells its pusher as it goes. Each line reaches the pusher's terminal as a
 * `remote: …` line, in the style of Heroku and Dokku: steps start with `----->`, details
 * are indented under them, and errors go to stderr.
 */
export interface Progress {
  /** A step starting: `-----> Building web`. */
  step(text: string): void;
  /** Detail under the current step (e.g. docker's output), indented. */
  info(text: string): void;
  /** Why something failed; may hold several lines. */
  error(text: string): void;
}

/**
 * A Progress over two text sinks (the hook's stdout and stderr). Every line is made safe for
 * the pusher's terminal here, once for all: a build's output passes through `info`.
 */
export function progressTo(out: (text: string) => void, err: (text: string) => void): Progress {
  const lines = (text: string, prefix: string) => terminalSafe(text).split('\n').map((l) => `${prefix}${l}\n`).join('');
  return {
    step: (text) => out(lines(text, '-----> ')),
    info: (text) => out(lines(text, '       ')),
    error: (text) => err(lines(text, '')),
  };
}

/** A Progress that shows nothing (work nobody watches: recovery at start, the grid's own upkeep). */
export const SILENT_PROGRESS: Progress = { step() {}, info() {}, error() {} };
