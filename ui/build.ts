// The dashboard's files: the page's TypeScript (ui/page/, Preact and elkjs) bundled by esbuild
// into one script, beside the static files (ui/static/), in dist/ui/ (or another folder).
// Nothing is fetched at run time: HQ serves these files alone, with no CDN.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Builds the dashboard into `outDir` (emptied first). */
export async function buildUi(outDir: string): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  cpSync(join(here, 'static'), outDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'page', 'main.tsx')],
    outfile: join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
    // elkjs' bundle asks for 'web-worker' only under Node; in the page it lays out in-thread.
    external: ['web-worker'],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildUi(join(here, '..', 'dist', 'ui'));
}
