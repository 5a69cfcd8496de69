import { type Node } from 'yaml';
import { checkConnections, type Participant } from './connections.js';
import { folderDigest } from './digest.js';
import { readClasses } from './element-class.js';
import { CompileError, FaultList, type Position } from './faults.js';
import type { ClassSpec, StackSpec } from './model.js';
import { NAME, NAME_RULE } from './names.js';
import { readQuarryFile } from './quarry-file.js';
import { checkRepoPath } from './repo-path.js';
import type { SourceTree } from './source-tree.js';
import { readTopology, type TopologyRead } from './topology.js';
import { YamlFile } from './yaml-file.js';

export interface CompileOptions {
  /** The stack's name when quarry.yml gives none: the repo's (or folder's) name. */
  defaultName?: string;
  /** Put before file names in fault messages (the folder the user named). */
  prefix?: string;
}

/**
 * Compiles a stack: quarry.yml, its topology and every element class, checked as a whole.
 * Returns the stack, or throws CompileError with every fault found, each at its place.
 * Pure: reads only through `tree`.
 */
export function compileStack(tree: SourceTree, options: CompileOptions = {}): StackSpec {
  const faults = new FaultList();
  const stack = check(tree, faults, options);
  if (faults.size > 0 || !stack) throw new CompileError(faults.sorted(), options.prefix ?? '');
  return stack;
}

function check(tree: SourceTree, faults: FaultList, options: CompileOptions): StackSpec | undefined {
  const text = tree.readText('quarry.yml');
  if (text === undefined) {
    const other = ['quarry.yaml', 'Quarry.yml'].find((name) => tree.isFile(name));
    faults.add({ file: 'quarry.yml', line: 1, col: 1 },
      other ? `the stack's file must be named quarry.yml, not ${other}` : `there is no quarry.yml at the root of the stack`);
    return undefined;
  }
  const quarryFile = new YamlFile('quarry.yml', text, faults);
  const q = readQuarryFile(quarryFile, tree, faults);
  const classes = readClasses(tree, faults);

  let topology: TopologyRead = { elements: [], elementAt: new Map(), hashAt: new Map(), connections: [] };
  if (q.topology) {
    const source = topologySource(tree, faults, quarryFile, q.topology);
    if (source) topology = readTopology(source.file, faults, source.root, classes, q.nodeAt);
  }

  checkHashFields(topology, classes, faults);

  const participants = new Map<string, Participant>();
  for (const node of q.nodes) {
    participants.set(node.name, { what: `node '${node.name}'`, ports: node.ports, broken: q.brokenPorts.get(node.name) ?? new Set() });
  }
  const elementsByName = new Map(topology.elements.map((e) => [e.name, e]));
  for (const name of topology.elementAt.keys()) {
    if (participants.has(name)) {
      // Both a node and an element (reported): which one a connection means is unknowable.
      participants.set(name, { what: `'${name}'`, ports: {}, broken: 'all' });
      continue;
    }
    const element = elementsByName.get(name);
    const read = element && classes.get(element.class);
    participants.set(name, read?.spec
      ? { what: `element '${name}' (class ${read.spec.name})`, ports: read.spec.ports, broken: read.brokenPorts }
      : { what: `element '${name}'`, ports: {}, broken: 'all' });
  }
  const connections = checkConnections(topology.connections, participants, faults);

  const name = q.name ?? options.defaultName;
  if (name === undefined || !NAME.test(name)) {
    faults.add({ file: 'quarry.yml', line: 1, col: 1 }, name === undefined
      ? `the stack has no name: add 'name:' to quarry.yml`
      : `the folder's name '${name}' is not a stack name (${NAME_RULE}): add 'name:' to quarry.yml`);
  }
  const startsWith = topology.elements.reduce((n, e) => n + e.scale, 0);
  if (q.autoscale?.maxInstances !== undefined && q.autoscale.capAt && q.autoscale.maxInstances < startsWith) {
    faults.add(q.autoscale.capAt, `autoscale: max_instances (${q.autoscale.maxInstances}) is below the ${startsWith} element instances the stack starts with ` +
      `(${topology.elements.map((e) => `${e.name} ${e.scale}`).join(', ')}); raise it, or lower a scale or a shard's min`);
  }
  if (faults.size > 0 || name === undefined) return undefined;

  for (const node of q.nodes) {
    if (node.build !== undefined) node.buildDigest = folderDigest(tree, node.build);
  }
  const used = new Set(topology.elements.map((e) => e.class));
  const usedClasses: ClassSpec[] = [...classes.values()]
    .flatMap((read) => (read.spec && used.has(read.spec.name) ? [read.spec] : []));
  const autoscale = q.autoscale && { enabled: q.autoscale.enabled, ...(q.autoscale.maxInstances !== undefined && { maxInstances: q.autoscale.maxInstances }) };
  return { name, env: q.env, nodes: q.nodes, classes: usedClasses, elements: topology.elements, connections, ...(autoscale && { autoscale }) };
}

function topologySource(
  tree: SourceTree, faults: FaultList, quarryFile: YamlFile,
  ref: { file: string; at: Position } | { inline: Node; at: Position },
): { file: YamlFile; root: Node | null } | undefined {
  if ('inline' in ref) return { file: quarryFile, root: ref.inline };
  const checked = checkRepoPath(ref.file, 'topology file', './topology.yml');
  if ('fault' in checked) {
    faults.add(ref.at, checked.fault);
    return undefined;
  }
  const path = checked.path;
  const text = tree.readText(path);
  if (text === undefined) {
    const guess = ['topology.yml', 'topology.yaml'].find((p) => p !== path && tree.isFile(p));
    faults.add(ref.at, `topology file '${ref.file}' does not exist${guess ? `; did you mean './${guess}'?` : ''}`);
    return undefined;
  }
  const file = new YamlFile(path, text, faults);
  return { file, root: file.root };
}

/** `by: hash:<field>` needs the field in every log the element is pushed: in each push in port. */
function checkHashFields(topology: TopologyRead, classes: Map<string, { spec?: ClassSpec }>, faults: FaultList): void {
  for (const element of topology.elements) {
    const by = element.shard?.by;
    const at = topology.hashAt.get(element.name);
    const spec = classes.get(element.class)?.spec;
    if (!by?.startsWith('hash:') || !at || !spec) continue;
    const field = by.slice('hash:'.length);
    const inputs = Object.entries(spec.ports).filter(([, p]) => p.kind === 'push' && p.dir === 'in');
    if (inputs.length === 0) {
      faults.add(at, `element '${element.name}': 'by: ${by}' spreads pushes, but class '${spec.name}' has no push in port; use round-robin`);
      continue;
    }
    for (const [portName, port] of inputs) {
      if (!port.fields.includes(field)) {
        faults.add(at, `element '${element.name}': shards by field '${field}', but its port '${portName}' does not need it (fields: ${port.fields.join(', ') || 'none'}); add '${field}' to that port's fields in elements/${spec.name}/element.yml so every log carries it`);
      }
    }
  }
}
