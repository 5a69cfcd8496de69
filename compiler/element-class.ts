import type { FaultList } from './faults.js';
import { folderDigest } from './digest.js';
import { MapReader } from './map-reader.js';
import type { ClassSpec } from './model.js';
import { PORT, PORT_RULE } from './names.js';
import { readPorts } from './ports.js';
import { checkRepoPath } from './repo-path.js';
import type { SourceTree } from './source-tree.js';
import { YamlFile } from './yaml-file.js';
import { DEFAULT_MEMORY } from './quarry-file.js';

const CLASS_KEYS = ['class', 'description', 'ports', 'memory', 'shardable', 'cost', 'main'] as const;
/** The code file a class runs when element.yml names none, in this order. */
export const MAIN_CANDIDATES = ['index.ts', 'index.js', 'index.mjs', 'main.ts', 'main.js'];

export interface ClassRead {
  spec?: ClassSpec;
  /** Ports that failed to parse, so that connections to them are not reported twice. */
  brokenPorts: Set<string>;
  /** element.yml is there but could not be read: don't report the class as unknown. */
  broken: boolean;
}

/** Every `elements/<class>/element.yml`, whether or not the topology uses it. */
export function readClasses(tree: SourceTree, faults: FaultList): Map<string, ClassRead> {
  const classes = new Map<string, ClassRead>();
  for (const name of tree.entries('elements')) {
    const folder = `elements/${name}`;
    const path = `${folder}/element.yml`;
    const text = tree.readText(path);
    if (text === undefined) continue; // a folder of shared code, not a class
    classes.set(name, readClass(tree, faults, name, folder, new YamlFile(path, text, faults)));
  }
  return classes;
}

function readClass(tree: SourceTree, faults: FaultList, name: string, folder: string, file: YamlFile): ClassRead {
  const what = `element class '${name}'`;
  const broken: ClassRead = { brokenPorts: new Set(), broken: true };
  if (file.root === null) return broken;
  const r = MapReader.of(file, faults, what, file.root, file.at(file.root), CLASS_KEYS);
  if (!r) return broken;
  if (!PORT.test(name)) faults.add(r.anchor, `${what}: a class folder's name has ${PORT_RULE}`);
  const declared = r.string('class');
  if (declared !== undefined && declared !== name) {
    faults.add(r.valueAt('class'), `${what}: says 'class: ${declared}' but lives in ${folder}/; the folder's name is the class's name`);
  }
  r.string('description');
  const { ports, broken: brokenPorts } = readPorts(file, faults, what, r.raw('ports'));
  const dockerfile = tree.isFile(`${folder}/Dockerfile`);
  const named = r.string('main');
  let main: string | undefined;
  if (named !== undefined) {
    const checked = checkRepoPath(named, `'main'`, 'index.js', folder);
    if ('fault' in checked) faults.add(r.valueAt('main'), `${what}: ${checked.fault}`);
    else if (!tree.isFile(`${folder}/${checked.path}`)) faults.add(r.valueAt('main'), `${what}: 'main' names ${folder}/${named}, which does not exist`);
    else main = checked.path;
  } else {
    main = MAIN_CANDIDATES.find((candidate) => tree.isFile(`${folder}/${candidate}`));
    if (main === undefined && !dockerfile) {
      faults.add(r.anchor, `${what}: has no code: add ${folder}/index.js (or index.ts), or name the file with 'main:', or give the class a Dockerfile`);
    }
  }
  const spec: ClassSpec = {
    name,
    folder,
    ports,
    memory: r.int('memory', 16, 1_048_576, ' (MB)') ?? DEFAULT_MEMORY,
    shardable: r.bool('shardable') ?? false,
    cost: r.number('cost', 0) ?? 0,
    dockerfile,
    digest: folderDigest(tree, folder),
  };
  if (main !== undefined) spec.main = main;
  return { spec, brokenPorts, broken: false };
}
