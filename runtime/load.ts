import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isElementDefinition, type ElementDefinition } from './definition.js';
import { ElementCodeError } from './errors.js';

/** The code file of an element class folder, tried in this order. */
export const CODE_FILES = ['index.ts', 'index.mts', 'index.js', 'index.mjs'];

/** A code file, or the first of CODE_FILES in a class folder. */
export function codeFileOf(path: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new ElementCodeError(`${path}: no such file or folder`);
  if (!statSync(full).isDirectory()) return full;
  for (const name of CODE_FILES) {
    const file = join(full, name);
    if (existsSync(file)) return file;
  }
  throw new ElementCodeError(`${path}: no element code (${CODE_FILES.join(', ')})`);
}

let tsx: Promise<unknown> | undefined;

/**
 * Imports an element class's code and returns its definition: the default export (or an export
 * named `element`). TypeScript is loaded through tsx, registered on first need.
 */
export async function loadElement(path: string): Promise<ElementDefinition<any>> {
  const file = codeFileOf(path);
  if (/\.[mc]?tsx?$/.test(file)) {
    tsx ??= import('tsx/esm/api').then((api) => api.register());
    await tsx;
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ElementCodeError(`${file}: cannot be loaded: ${(err as Error).message}`, { cause: err });
  }
  const definition = mod.default ?? mod.element;
  if (!isElementDefinition(definition)) {
    throw new ElementCodeError(`${file}: the default export is not an element (export default element({...}))`);
  }
  return definition;
}
