import { CompileError, compileStack, formatFault, memoryTree, type StackSpec } from '../../compiler/index.js';

/** A small valid stack: a service, a web node with a query port, and a three-element flow. */
export const base: Record<string, string> = {
  'quarry.yml': `name: demo
env:
  MODE: test
nodes:
  db:
    type: service
    image: postgres:16
    port: 5432
  web:
    type: web
    build: ./web
    port: 8080
    domains: [demo.example.com]
    health: /healthz
    ports:
      ask: { kind: query, dir: out, fields: [q] }
topology: ./topology.yml
`,
  'topology.yml': `elements:
  src:
    class: source
  mid:
    class: mapper
    shard: { min: 1, max: 3, by: "hash:id" }
  sink:
    class: sink
connections:
  - src.out -> mid.in
  - mid.out -> sink.in
  - web.ask => sink.query
`,
  'web/Dockerfile': 'FROM quarry/node:20\n',
  'web/server.js': 'console.log("web")\n',
  'elements/source/element.yml': `ports:
  out: { kind: push, dir: out, fields: [id, body] }
`,
  'elements/source/index.js': 'export default {}\n',
  'elements/mapper/element.yml': `ports:
  in:  { kind: push, dir: in,  fields: [id] }
  out: { kind: push, dir: out, fields: [id, body, tag] }
shardable: true
`,
  'elements/mapper/index.js': 'export default {}\n',
  'elements/sink/element.yml': `ports:
  in:    { kind: push,  dir: in, fields: [id, tag] }
  query: { kind: query, dir: in, fields: [q] }
memory: 256
`,
  'elements/sink/index.js': 'export default {}\n',
};

/** The base stack with some files replaced (a value of null removes the file). */
export function stackWith(changes: Record<string, string | null>): Record<string, string> {
  const files = { ...base };
  for (const [path, text] of Object.entries(changes)) {
    if (text === null) delete files[path];
    else files[path] = text;
  }
  return files;
}

export function compile(files: Record<string, string>): StackSpec {
  return compileStack(memoryTree(files), { defaultName: 'fallback' });
}

/** The formatted faults of a stack that must not compile. */
export function faultsOf(files: Record<string, string>): string[] {
  try {
    compile(files);
  } catch (err) {
    if (err instanceof CompileError) return err.faults.map((f) => formatFault(f));
    throw err;
  }
  throw new Error('the stack compiled, but faults were expected');
}
