#!/usr/bin/env node
// Runs the compiled CLI in dist/ (npm ci runs `prepare`, which builds it) when it is at
// least as new as the TypeScript it came from; otherwise, in a checkout being edited,
// runs the TypeScript through tsx, so a stale build is never what answers.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli', 'main.js');

function newestSource(folder, depth = 0) {
  let newest = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    if (['node_modules', 'dist', 'test', 'bench', 'stacks-example', '.git'].includes(entry.name) && depth === 0) continue;
    const path = join(folder, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path, depth + 1));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

if (existsSync(built) && statSync(built).mtimeMs >= newestSource(root)) {
  await import(pathToFileURL(built).href);
} else {
  await import('tsx/esm');
  await import(pathToFileURL(join(root, 'cli', 'main.ts')).href);
}
