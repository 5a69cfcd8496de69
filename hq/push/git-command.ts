import { NotGitCommandError } from '../errors.js';

/** The two git services a client may ask for over SSH. */
export type GitService = 'git-receive-pack' | 'git-upload-pack';


/**
 * Reads the command git's client sends over SSH: `git-receive-pack '/docsearch.git'` (the
 * path in single quotes, `'` written as `'\''`), or the older `git receive-pack …`.
 */
export function parseGitCommand(command: string): { service: GitService; path: string } {
  const words = shellWords(command);
  if (words && words[0] === 'git' && words.length === 3) words.splice(0, 2, `git-${words[1]}`);
  const [service, path] = words ?? [];
  if (!words || words.length !== 2 || (service !== 'git-receive-pack' && service !== 'git-upload-pack') || !path) {
    throw new NotGitCommandError(
      `quarry only takes git pushes and fetches here (git-receive-pack, git-upload-pack), not '${shortened(command)}'`);
  }
  return { service, path };
}

/** Splits a command as a POSIX shell would for quoting (no expansions); undefined if unbalanced. */
function shellWords(command: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word = (word ?? '') + command.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      if (i + 1 >= command.length) return undefined;
      word = (word ?? '') + command[++i];
    } else if (c === '"' || c === '$' || c === '`' || c === ';' || c === '|' || c === '&' || c === '\n') {
      return undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

function shortened(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}
