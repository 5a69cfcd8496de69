import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { quarryRoot } from '../launcher/index.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The quarry checkout this module belongs to (run from source, or from dist/). */
export const checkoutRoot = quarryRoot;

/** The element launcher from source (run through tsx, so edits to the runtime count at once). */
export function runtimeMain(): string {
  return join(checkoutRoot(), 'runtime', 'main.ts');
}

/**
 * Node options that let a child process's code `import … from 'quarry/runtime'` wherever its
 * folder is (a stack outside this checkout has no node_modules/quarry): tsx, then a resolve
 * hook mapping that one specifier to this checkout's runtime/index.ts. Written once into
 * `folder` (the run's own temporary folder).
 */
export function runtimeImportOptions(folder: string): string[] {
  const target = pathToFileURL(join(checkoutRoot(), 'runtime', 'index.ts')).href;
  const hooks = join(folder, 'quarry-runtime-hooks.mjs');
  const register = join(folder, 'quarry-runtime-register.mjs');
  if (!existsSync(register)) {
    writeFileSync(hooks, `// Made by quarry run: 'quarry/runtime' is this checkout's runtime.
export async function resolve(specifier, context, next) {
  // Passed down the chain as a URL, so that tsx (registered before) resolves and loads it.
  if (specifier === 'quarry/runtime') return next(${JSON.stringify(target)}, context);
  return next(specifier, context);
}
`);
    writeFileSync(register, `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hooks).href)});
`);
  }
  return [`--import=${import.meta.resolve('tsx/esm')}`, `--import=${pathToFileURL(register).href}`];
}

/** A fresh temporary folder for one run (hook files); the runner removes it when it stops. */
export function runFolder(): string {
  return mkdtempSync(join(tmpdir(), 'quarry-run-'));
}
