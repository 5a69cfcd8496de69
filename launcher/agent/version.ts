import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set by the image's bundler (esbuild `define`): the bundle has no package.json beside it. */
declare const QUARRY_AGENT_VERSION: string | undefined;

let known: string | undefined;

/**
 * The agent's version, as its record shows it: quarry's package version (from package.json
 * when run from a checkout; built into the bundle of the image).
 */
export function agentVersion(): string {
  if (typeof QUARRY_AGENT_VERSION === 'string') return QUARRY_AGENT_VERSION;
  if (known !== undefined) return known;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'quarry' && typeof pkg.version === 'string') return (known = pkg.version);
    }
    const up = dirname(dir);
    if (up === dir) return (known = 'unknown');
    dir = up;
  }
}
