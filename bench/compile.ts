// bench:compile — compile generated stacks of growing size (each element its own class,
// two push connections per element, and a query connection every tenth) and diff the
// plan, to show that the time grows linearly. Last line: JSON.
import { compileStack, memoryTree } from '../compiler/index.js';
import { diffPlan, PREVIEW_DIGEST_KEY } from '../plan/index.js';

function generate(elements: number): Record<string, string> {
  const files: Record<string, string> = {
    'quarry.yml': 'name: big\nenv:\n  MODE: bench\nnodes:\n  web:\n    type: web\n    image: quarry/node:20\n    port: 8080\n    domains: [big.example.com]\n    ports:\n      ask: { kind: query, dir: out, fields: [q] }\ntopology: ./topology.yml\n',
  };
  const els: string[] = [];
  const conns: string[] = [];
  for (let i = 0; i < elements; i++) {
    files[`elements/c${i}/element.yml`] =
      'ports:\n  in:  { kind: push, dir: in, fields: [id, v] }\n  out: { kind: push, dir: out, fields: [id, v, w] }\n' +
      '  ask: { kind: query, dir: out, fields: [q] }\n  answer: { kind: query, dir: in, fields: [q] }\nmemory: 64\nshardable: true\n';
    files[`elements/c${i}/index.js`] = `export default { n: ${i} };\n`;
    els.push(`  e${i}:\n    class: c${i}\n${i % 7 === 0 ? '    shard: { min: 1, max: 4, by: "hash:id" }\n' : ''}`);
    // Two connections per element; the ones past the end wrap to the start (push cycles are allowed).
    conns.push(`  - e${i}.out -> e${(i + 1) % elements}.in`);
    conns.push(`  - e${i}.out -> e${(i + 2) % elements}.in`);
    if (i % 10 === 0 && i + 5 < elements) conns.push(`  - e${i}.ask => e${i + 5}.answer`);
  }
  conns.push(`  - web.ask => e0.answer`);
  files['topology.yml'] = `elements:\n${els.join('')}connections:\n${conns.join('\n')}\n`;
  return files;
}

function timeOnce(files: Record<string, string>): { ms: number; instructions: number; connections: number } {
  const tree = memoryTree(files);
  const start = process.hrtime.bigint();
  const stack = compileStack(tree);
  const plan = diffPlan(stack, undefined, { digestKey: PREVIEW_DIGEST_KEY });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  return { ms, instructions: plan.instructions.length, connections: stack.connections.length };
}

const sizes = [250, 500, 1000, 2000, 4000];
const runs = 5;
const results: Array<{ elements: number; connections: number; ms: number; usPerElement: number }> = [];
// One warm-up at the middle size, so the first measured size does not pay for the JIT.
timeOnce(generate(1000));
for (const elements of sizes) {
  const files = generate(elements);
  const times: number[] = [];
  let connections = 0;
  for (let r = 0; r < runs; r++) {
    const one = timeOnce(files);
    times.push(one.ms);
    connections = one.connections;
  }
  const ms = times.sort((a, b) => a - b)[Math.floor(runs / 2)]!; // the median
  results.push({ elements, connections, ms, usPerElement: (ms * 1000) / elements });
  console.log(`${String(elements).padStart(5)} elements, ${String(connections).padStart(5)} connections: ${ms.toFixed(1).padStart(8)} ms median of ${runs}  (${((ms * 1000) / elements).toFixed(1)} µs per element)`);
}
const at = (n: number) => results.find((r) => r.elements === n)!;
const growth = at(4000).ms / at(1000).ms;
console.log(`4000 vs 1000 elements: ${growth.toFixed(2)} x the time for 4 x the stack (linear is 4)`);
console.log(JSON.stringify({
  elements: 1000, connections: at(1000).connections, ms: Number(at(1000).ms.toFixed(1)),
  growth4x: Number(growth.toFixed(2)),
  sizes: results.map((r) => ({ elements: r.elements, ms: Number(r.ms.toFixed(1)) })),
}));
