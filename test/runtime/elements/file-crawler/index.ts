import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { element } from '../../../../runtime/index.js';

/** Lists every file under config.root with its size. */
export default element<{ root: string }>({
  async *generate(ctx) {
    const walk = async function* (dir: string): AsyncGenerator<{ path: string; size: number }> {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) yield* walk(path);
        else if (entry.isFile()) yield { path, size: (await stat(path)).size };
      }
    };
    yield* walk(ctx.config.root);
  },
});
