// Walks config.root (relative to this class's folder) and pushes one log per text file.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { element } from 'quarry/runtime';

const here = fileURLToPath(new URL('.', import.meta.url));

async function* walk(folder) {
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

export default element({
  async *generate({ config }) {
    const root = join(here, config.root ?? 'corpus');
    for await (const path of walk(root)) {
      const text = await readFile(path, 'utf8');
      yield { path: relative(root, path), size: text.length, text }; // to the one push out port, 'files'
    }
  },
});
