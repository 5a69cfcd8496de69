import { basename, resolve } from 'node:path';
import { compileStack, type CompileOptions } from './compile.js';
import { diskTree } from './disk-tree.js';
import type { StackSpec } from './model.js';
import { stackNameFrom } from './names.js';

export { compileStack, type CompileOptions } from './compile.js';
export { CompileError, formatFault, type Fault, type Position } from './faults.js';
export { memoryTree, type SourceTree } from './source-tree.js';
export { diskTree } from './disk-tree.js';
export { dataDigest, folderDigest, keyedDigest } from './digest.js';
export { serviceEnvNames, stackNameFrom } from './names.js';
export type * from './model.js';

/** Compiles the stack in a folder on disk; its name defaults to the folder's. */
export function compileFolder(dir: string, options: CompileOptions = {}): StackSpec {
  return compileStack(diskTree(dir), { defaultName: stackNameFrom(basename(resolve(dir))), ...options });
}
