import { StackNameError } from './errors.js';

/** The shape of a stack's name: a DNS label, since it goes into container and host names. */
const STACK_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** Whether `name` can be a stack's name (and so a folder under `stacks/`). */
export function isStackName(name: string): boolean {
  return STACK_NAME.test(name);
}


/**
 * The stack a git path names. `/docsearch.git`, `docsearch.git`, `/docsearch` and
 * `docsearch` all name stack `docsearch`; anything else (folders, upper case, `..`) is refused.
 */
export function stackFromPath(path: string): string {
  const name = path.replace(/^\/+/, '').replace(/\.git$/, '').replace(/\/+$/, '');
  if (!STACK_NAME.test(name)) {
    throw new StackNameError(
      `'${printable(path)}' is not a stack name: a stack's name has lower-case letters, digits and dashes, ` +
      `starts with a letter and is at most 63 long (e.g. ssh://quarry@HOST:PORT/my-stack)`);
  }
  return name;
}

function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}
