import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { ImageBuildError } from './errors.js';
import { buildImage, hasImage } from './images.js';

/** The local base every element image stands on (scripts/images.sh makes it). */
export const NODE_BASE_IMAGE = 'quarry/node:20';
/** The runtime image's name; `:latest` always names the newest one this machine built. */
export const RUNTIME_IMAGE = 'quarry/runtime';
/** Where the runtime lives inside the images: Node's walk up from /app finds `quarry/runtime` there. */
export const RUNTIME_MAIN = '/node_modules/quarry/dist/runtime/main.js';

/**
 * The packages the runtime needs at run time, with their own dependencies: zeromq (its
 * prebuilt linux binary is inside the package) and tsx (to load element code written in
 * TypeScript; load.ts registers it on first need).
 */
const RUNTIME_PACKAGES = ['zeromq', 'tsx'];
/** Parts of those packages that are never used in a linux x64 image. */
const PRUNE = ['zeromq/build/darwin', 'zeromq/build/win32', 'zeromq/src', 'zeromq/script'];
/** The folders of quarry's own code the runtime is compiled from (it imports only these). */
const RUNTIME_SOURCES = ['runtime', 'errors'];

/** The quarry checkout this module belongs to (from source, or from dist/). */
export function quarryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'quarry') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no quarry package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

function filesUnder(folder: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && keep(entry.name)) out.push(path);
    }
  };
  walk(folder);
  return out.sort();
}

/** Each package with everything it depends on (npm's flat layout; nested node_modules come along). */
function packageClosure(root: string, names: string[]): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (name: string, optional: boolean) => {
    if (found.has(name)) return;
    const dir = join(root, 'node_modules', name);
    if (!existsSync(join(dir, 'package.json'))) {
      if (optional) return; // another platform's binary, not installed here
      throw new Error(`the runtime needs the package ${name}, which is not in ${root}/node_modules; run npm ci`);
    }
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      version: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>;
    };
    found.set(name, pkg.version);
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, true);
  };
  for (const name of names) visit(name, false);
  return found;
}

/**
 * The runtime image's tag: a digest of the runtime's TypeScript sources, the packages it
 * carries (name and version), and the base image's id. Cheap to compute (no compile), so a
 * present tag is known to be current without building anything.
 */
function runtimeDigest(docker: Docker, root: string, packages: Map<string, string>): Promise<string> {
  const hash = createHash('sha256');
  for (const folder of RUNTIME_SOURCES) {
    for (const file of filesUnder(join(root, folder), (n) => n.endsWith('.ts'))) {
      hash.update(`${relative(root, file)}\0`);
      hash.update(readFileSync(file));
    }
  }
  for (const [name, version] of [...packages].sort()) hash.update(`${name}@${version}\0`);
  hash.update(RUNTIME_DOCKERFILE);
  return docker.getImage(NODE_BASE_IMAGE).inspect().then(
    (info) => hash.update(info.Id).digest('hex'),
    (err: { statusCode?: number }) => {
      if (err.statusCode === 404) {
        throw new ImageBuildError(RUNTIME_IMAGE, root, `the base image ${NODE_BASE_IMAGE} is missing; run scripts/setup.sh (or npm run setup) to make it`, []);
      }
      throw err;
    },
  );
}

const RUNTIME_DOCKERFILE = `FROM ${NODE_BASE_IMAGE}
COPY node_modules/ /node_modules/
# Element code sits in /app without a package.json of its own: ESM, as in a quarry checkout.
COPY package.json /package.json
`;

/**
 * Compiles the runtime (and the errors it imports) into \`out\`, with the project's own
 * compiler settings. Done apart from dist/ so that an image build never races with a
 * developer's \`npm run build\` nor depends on dist/ being fresh.
 */
async function compileRuntime(root: string, out: string): Promise<void> {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const config = join(out, 'tsconfig.json');
  writeFileSync(config, JSON.stringify({
    extends: join(root, 'tsconfig.build.json'),
    compilerOptions: {
      rootDir: root, outDir: join(out, 'dist'), sourceMap: false, noEmitOnError: true,
      typeRoots: [join(root, 'node_modules', '@types')],
    },
    include: RUNTIME_SOURCES.map((f) => join(root, f, '**', '*.ts')),
    exclude: [],
  }));
  if (!existsSync(tsc)) {
    // No compiler (an install without dev dependencies): the built dist/ is what there is.
    for (const folder of RUNTIME_SOURCES) {
      if (!existsSync(join(root, 'dist', folder))) throw new Error(`neither typescript nor ${root}/dist/${folder} is there to make the runtime image from; run npm ci`);
      cpSync(join(root, 'dist', folder), join(out, 'dist', folder), { recursive: true });
    }
    return;
  }
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', config], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const output = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    throw new ImageBuildError(RUNTIME_IMAGE, root, 'compiling the runtime failed', output.split('\n').filter(Boolean).slice(0, 15));
  }
}

let ensuring: Promise<string> | undefined;

/**
 * Makes sure the runtime image for this checkout's runtime is there, and resolves with its
 * tag (`quarry/runtime:<digest>`); `quarry/runtime:latest` is moved to it as well, for
 * Dockerfiles of nodes with ports (`FROM quarry/runtime`). Built once per runtime change:
 * FROM quarry/node:20, with the compiled runtime at /node_modules/quarry and the packages it
 * needs beside it, so that element code's bare `import … from 'quarry/runtime'` resolves.
 */
export function ensureRuntimeImage(docker: Docker, onLine?: (line: string) => void): Promise<string> {
  // One build per process at a time: concurrent callers share it.
  const run = (ensuring ??= makeRuntimeImage(docker, onLine).finally(() => { ensuring = undefined; }));
  return run;
}

async function makeRuntimeImage(docker: Docker, onLine?: (line: string) => void): Promise<string> {
  const root = quarryRoot();
  const packages = packageClosure(root, RUNTIME_PACKAGES);
  const tag = `${RUNTIME_IMAGE}:${(await runtimeDigest(docker, root, packages)).slice(0, 12)}`;
  if (!(await hasImage(docker, tag))) {
    onLine?.(`making the runtime image ${tag} (once per runtime change)`);
    const context = mkdtempSync(join(tmpdir(), 'quarry-runtime-image-'));
    try {
      const own = join(context, 'node_modules', 'quarry');
      mkdirSync(own, { recursive: true });
      await compileRuntime(root, own);
      writeFileSync(join(own, 'package.json'), `${JSON.stringify({
        name: 'quarry', private: true, type: 'module',
        exports: { './runtime': './dist/runtime/index.js', './package.json': './package.json' },
      }, null, 2)}\n`);
      for (const name of packages.keys()) {
        cpSync(join(root, 'node_modules', name), join(context, 'node_modules', name), { recursive: true, verbatimSymlinks: true });
      }
      for (const path of PRUNE) rmSync(join(context, 'node_modules', path), { recursive: true, force: true });
      writeFileSync(join(context, 'package.json'), '{ "type": "module" }\n');
      writeFileSync(join(context, 'Dockerfile'), RUNTIME_DOCKERFILE);
      await buildImage(docker, { folder: context, tag, ...(onLine && { onLine }) });
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  }
  const [repo] = tag.split(':') as [string];
  const latest = await docker.getImage(`${RUNTIME_IMAGE}:latest`).inspect().catch(() => undefined);
  const current = await docker.getImage(tag).inspect();
  if (latest?.Id !== current.Id) await docker.getImage(tag).tag({ repo, tag: 'latest' });
  return tag;
}

/** The label an element image carries: the runtime image it was made on. */
const RUNTIME_LABEL = 'quarry.runtime';

export interface ElementImageOptions {
  /** The element class's folder (elements/<class>/): copied to /app. */
  folder: string;
  /** The image's tag: the plan's `buildTag` for the class (content-addressed). */
  tag: string;
  /** The code file, relative to the folder; default: the runtime picks index.ts/index.js. */
  main?: string;
  onLine?: (line: string) => void;
  /** Stops the build when aborted (a push's `buildTimeout`). */
  abortSignal?: AbortSignal;
  /** The memory limit of the build's steps, in bytes (a push's `buildMemory`). */
  memory?: number;
}

/**
 * The entries of a class folder's top level that are its dependencies rather than its code:
 * they are copied into the image in a step of their own, before the code, so that a push
 * that changes only code reuses docker's cached layer of them. No `npm install` is run (a
 * build has no network): a package.json whose dependencies are not vendored in node_modules/
 * gives an image without them, as before.
 */
const DEPENDENCY_ENTRIES = ['package.json', 'package-lock.json', 'node_modules'];

/** Whether a folder holds anything the build context carries (it packs files and links, not folders). */
function hasContextEntries(dir: string): boolean {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || hasContextEntries(join(dir, entry.name))) return true;
  }
  return false;
}

/**
 * The Dockerfile of an element image: the dependencies (deps/, when the class has any) in a
 * layer before the code (app/), both copied to /app. Docker's cache key of a COPY is the
 * checksum of what it copies (not the files' times), on top of the same parent: a push whose
 * dependencies did not change reuses the dependency layer, and only the code layer is new.
 */
function elementDockerfile(runtime: string, code: string, deps: boolean, app: boolean): string {
  return [
    `FROM ${runtime}`,
    ...(deps ? ['# The class\'s dependencies, before its code: a push that changes only code reuses this layer.', 'COPY deps/ /app/'] : []),
    ...(app ? ['COPY app/ /app/'] : []),
    'WORKDIR /app',
    // Last, so that it is no parent of the cached layers above (it makes no layer of its own).
    `LABEL ${RUNTIME_LABEL}=${JSON.stringify(runtime)}`,
    `CMD ["node", "${RUNTIME_MAIN}", ${JSON.stringify(code)}]`,
    '',
  ].join('\n');
}

/**
 * Builds the image of an element class that has no Dockerfile: the runtime image, the class
 * folder at /app, and the runtime's main as the command (the wiring comes in QUARRY_WIRING).
 * The folder's dependencies (DEPENDENCY_ENTRIES) are copied in a layer before the rest, so
 * that a code-only change rebuilds only the code layer.
 * A tag that is present already is the same build (tags are content digests): 'cached'.
 * The class folder is never written to: the build context is a copy with a Dockerfile added.
 */
export async function buildElementImage(docker: Docker, options: ElementImageOptions): Promise<'built' | 'cached'> {
  // The tag is a digest of the class's folder only: an image made on another runtime is made again.
  const runtime = await ensureRuntimeImage(docker, options.onLine);
  const made = await docker.getImage(options.tag).inspect().catch(() => undefined);
  if (made && made.Config?.Labels?.[RUNTIME_LABEL] === runtime) return 'cached';
  if (!existsSync(options.folder) || !statSync(options.folder).isDirectory()) {
    throw new ImageBuildError(options.tag, options.folder, 'the element class folder does not exist', []);
  }
  const context = mkdtempSync(join(tmpdir(), 'quarry-element-image-'));
  try {
    const app = join(context, 'app');
    const deps = join(context, 'deps');
    cpSync(options.folder, app, {
      recursive: true, verbatimSymlinks: true, filter: (src) => !src.split('/').includes('.git'),
    });
    mkdirSync(deps);
    for (const name of DEPENDENCY_ENTRIES) {
      if (lstatSync(join(app, name), { throwIfNoEntry: false })) renameSync(join(app, name), join(deps, name));
    }
    const hasDeps = hasContextEntries(deps);
    // A folder of dependencies only has no code step; an empty folder keeps it (and fails, as ever).
    const hasCode = hasContextEntries(app) || !hasDeps;
    const code = options.main !== undefined ? `/app/${options.main}` : '/app';
    writeFileSync(join(context, 'Dockerfile'), elementDockerfile(runtime, code, hasDeps, hasCode));
    return await buildImage(docker, {
      folder: context, tag: options.tag, force: made !== undefined, ...(options.onLine && { onLine: options.onLine }),
      ...(options.abortSignal && { abortSignal: options.abortSignal }), ...(options.memory !== undefined && { memory: options.memory }),
    });
  } catch (err) {
    if (err instanceof ImageBuildError) {
      throw new ImageBuildError(options.tag, options.folder, err.message.replace(/^building \S+ \(\S+\) failed: /, ''), []);
    }
    throw err;
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}
