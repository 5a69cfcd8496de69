/**
 * Bundles the agent (launcher/agent/main.ts) into one CommonJS file that runs with a bare
 * `node` (the agent image's whole content). Build-time code: it needs esbuild (tsx's own
 * dependency) and is never part of the bundle.
 *
 *   node --import tsx launcher/agent/bundle.ts OUTFILE   → prints `{ file, bytes, digest }`
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

export interface AgentBundle {
  file: string;
  bytes: number;
  /** sha256 of the bundle, hex. */
  digest: string;
}

/** The checkout this module is in. */
function checkoutRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above launcher/agent');
    dir = up;
  }
  return dir;
}

/** The line of etcd3 that reads its .proto files from beside itself when it is loaded. */
const ETCD3_PROTO_LOAD = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`,';

/**
 * etcd3 loads `../proto/rpc.proto` from its own folder at load time, which a one-file bundle
 * does not have: the protos are parsed here, at build time, and the bundle gets them as JSON
 * (proto-loader's `fromJSON`, with the options etcd3 gives).
 */
function etcd3Protos(root: string): Plugin {
  const require = createRequire(join(root, 'package.json'));
  const protobuf = require(require.resolve('protobufjs', { paths: [dirname(require.resolve('@grpc/proto-loader'))] })) as {
    Root: new () => { loadSync(file: string, options: { keepCase: boolean }): { resolveAll(): { toJSON(): unknown } } };
  };
  return {
    name: 'etcd3-protos',
    setup(build) {
      build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes(ETCD3_PROTO_LOAD)) {
          throw new Error(`${args.path} no longer loads its protos as expected (${ETCD3_PROTO_LOAD}): update launcher/agent/bundle.ts`);
        }
        const proto = join(dirname(args.path), '..', 'proto', 'rpc.proto');
        const json = JSON.stringify(new protobuf.Root().loadSync(proto, { keepCase: true }).resolveAll().toJSON());
        return { contents: text.replace(ETCD3_PROTO_LOAD, `(0, proto_loader_1.fromJSON)(${json},`), loader: 'js' };
      });
    },
  };
}

/** Bundles the agent into `outfile`; resolves with its size and digest. */
export async function bundleAgent(outfile: string): Promise<AgentBundle> {
  const root = checkoutRoot();
  const { build } = await import('esbuild');
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  mkdirSync(dirname(resolve(outfile)), { recursive: true });
  await build({
    entryPoints: [join(root, 'launcher', 'agent', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // ssh2 (dockerode's, for ssh:// engines the agent never uses) tries its native helpers
    // in a try/catch and falls back to JavaScript: they stay out.
    external: ['cpu-features', '*.node'],
    define: { QUARRY_AGENT_VERSION: JSON.stringify(version) },
    // version.ts reads import.meta.url only when QUARRY_AGENT_VERSION is not defined.
    logOverride: { 'empty-import-meta': 'silent' },
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'none',
    plugins: [etcd3Protos(root)],
    logLevel: 'warning',
  });
  const content = readFileSync(outfile);
  return { file: outfile, bytes: content.length, digest: createHash('sha256').update(content).digest('hex') };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node --import tsx launcher/agent/bundle.ts OUTFILE\n');
    process.exit(2);
  }
  bundleAgent(out).then(
    (bundle) => process.stdout.write(`${JSON.stringify(bundle)}\n`),
    (err: unknown) => {
      process.stderr.write(`bundling the agent failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
