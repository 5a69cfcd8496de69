#!/usr/bin/env node
// The compiled CLI (npm ci runs `prepare`, which builds dist/). From a source checkout
// without a build, fall back to running the TypeScript through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli', 'main.js');
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  await import('tsx/esm');
  await import(pathToFileURL(join(root, 'cli', 'main.ts')).href);
}
