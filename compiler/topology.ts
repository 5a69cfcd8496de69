import { isMap, isScalar, isSeq, type Node } from 'yaml';
import type { ClassRead } from './element-class.js';
import type { FaultList, Position } from './faults.js';
import { MapReader } from './map-reader.js';
import type { ElementSpec, PortKind, ShardSpec } from './model.js';
import { NAME, NAME_RULE } from './names.js';
import { readRestart } from './restart.js';
import { didYouMean } from './suggest.js';
import { describe, entries, type YamlFile } from './yaml-file.js';

const TOPOLOGY_KEYS = ['elements', 'connections'] as const;
const ELEMENT_KEYS = ['class', 'config', 'scale', 'shard', 'memory', 'restart'] as const;
const SHARD_KEYS = ['min', 'max', 'by'] as const;

/** One side of a connection as written, with the place of each part. */
export interface EndRef {
  name: string;
  port: string;
  at: Position;
  portAt: Position;
}

export interface ConnectionRef {
  kind: PortKind;
  from: EndRef;
  to: EndRef;
  at: Position;
  text: string;
}

export interface TopologyRead {
  elements: ElementSpec[];
  elementAt: Map<string, Position>;
  /** `hash:<field>` shards, with where the field was named, checked once ports are known. */
  hashAt: Map<string, Position>;
  connections: ConnectionRef[];
}

const CONNECTION = /^\s*([^\s.]+)\.(\S+?)\s*(->|=>)\s*([^\s.]+)\.(\S+?)\s*$/;

export function readTopology(
  file: YamlFile, faults: FaultList, root: Node | null, classes: Map<string, ClassRead>,
  nodeAt: Map<string, Position>,
): TopologyRead {
  const out: TopologyRead = { elements: [], elementAt: new Map(), hashAt: new Map(), connections: [] };
  const top = MapReader.of(file, faults, 'topology', root, file.at(root), TOPOLOGY_KEYS);
  if (!top) return out;

  const elements = top.raw('elements');
  if (top.has('elements') && !isMap(elements)) {
    faults.add(top.valueAt('elements'), `'elements' must be a mapping of element names to { class, config, … }, not ${describe(elements)}`);
  } else if (isMap(elements)) {
    for (const { key: name, pair } of entries(elements)) {
      const at = file.at(pair.key);
      out.elementAt.set(name, at);
      const element = readElement(file, faults, name, pair.value, at, classes, out);
      const node = nodeAt.get(name);
      if (node) {
        faults.add(at, `element '${name}' has the same name as node '${name}' (${node.file}:${node.line}); nodes and elements share one set of names`);
        continue;
      }
      if (element) out.elements.push(element);
    }
  }

  const connections = top.raw('connections');
  if (top.has('connections') && !isSeq(connections)) {
    faults.add(top.valueAt('connections'), `'connections' must be a list such as '- crawl.files -> index.in', not ${describe(connections)}`);
  } else if (isSeq(connections)) {
    for (const item of connections.items as Node[]) {
      const connection = readConnection(file, faults, item);
      if (connection) out.connections.push(connection);
    }
  }
  return out;
}

function readElement(
  file: YamlFile, faults: FaultList, name: string, node: Node | null, at: Position,
  classes: Map<string, ClassRead>, out: TopologyRead,
): ElementSpec | undefined {
  const what = `element '${name}'`;
  if (!NAME.test(name)) faults.add(at, `${what}: an element name has ${NAME_RULE}`);
  const r = MapReader.of(file, faults, what, node, at, ELEMENT_KEYS);
  if (!r) return undefined;
  const className = r.string('class');
  if (className === undefined) {
    if (!r.has('class')) faults.add(at, `${what}: needs 'class', the folder under elements/ that holds its code`);
    return undefined;
  }
  const read = classes.get(className);
  if (!read) {
    faults.add(r.valueAt('class'), `${what}: unknown element class '${className}': there is no elements/${className}/element.yml${didYouMean(className, classes.keys())}`);
  }
  const spec = read?.spec;

  let config: Record<string, unknown> = {};
  if (r.has('config')) {
    const raw = r.raw('config');
    if (!isMap(raw)) faults.add(r.valueAt('config'), `${what}: 'config' must be a mapping, not ${describe(raw)}`);
    else config = raw.toJSON() as Record<string, unknown>;
  }

  const element: ElementSpec = { name, class: className, config, memory: spec?.memory ?? 128, scale: 1 };
  const memory = r.int('memory', 16, 1_048_576, ' (MB)');
  if (memory !== undefined) element.memory = memory;

  const scale = r.int('scale', 0, 1000);
  if (scale !== undefined) element.scale = scale;
  if (r.has('shard') && r.has('scale')) {
    faults.add(r.keyAt('shard'), `${what}: has both 'scale' (a fixed number of members) and 'shard' (members by load); give one`);
  }
  const restart = readRestart(r, what);
  if (restart) element.restart = restart;
  const shard = readShard(r, faults, what, name, out);
  if (shard) {
    element.shard = shard;
    element.scale = shard.min;
  }
  if (spec && !spec.shardable && ((scale ?? 1) > 1 || r.has('shard'))) {
    faults.add(r.keyAt(r.has('shard') ? 'shard' : 'scale'),
      `${what}: class '${className}' is not shardable, so it runs as one member; set 'shardable: true' in elements/${className}/element.yml if it keeps no state between logs`);
  }
  return element;
}

function readShard(r: MapReader, faults: FaultList, what: string, name: string, out: TopologyRead): ShardSpec | undefined {
  const s = r.map('shard', `${what}, shard`, SHARD_KEYS);
  if (!s) return undefined;
  const min = s.int('min', 1, 1000) ?? 1;
  const max = s.int('max', 1, 1000);
  if (!s.has('max')) faults.add(s.anchor, `${what}: a shard needs 'max', the most members it may grow to`);
  if (max !== undefined && max < min) faults.add(s.valueAt('max'), `${what}: shard 'max' (${max}) is below 'min' (${min})`);
  const by = s.string('by') ?? 'round-robin';
  if (by !== 'round-robin' && !/^hash:[A-Za-z_][\w-]*$/.test(by)) {
    faults.add(s.valueAt('by'), `${what}: shard 'by' must be 'round-robin' or 'hash:<field>' (e.g. hash:path), not '${by}'`);
    return undefined;
  }
  if (by.startsWith('hash:')) out.hashAt.set(name, s.valueAt('by'));
  return { min, max: Math.max(max ?? min, min), by };
}

function readConnection(file: YamlFile, faults: FaultList, item: Node): ConnectionRef | undefined {
  const shape = `a connection is written 'from.port -> to.port' (push) or 'from.port => to.port' (query)`;
  if (!isScalar(item) || typeof item.value !== 'string') {
    faults.add(file.at(item), `${shape}, not ${describe(item)}`);
    return undefined;
  }
  const text = item.value;
  const m = CONNECTION.exec(text);
  if (!m) {
    faults.add(file.at(item), `'${text}': ${shape}`);
    return undefined;
  }
  const [, fromName, fromPort, arrow, toName, toPort] = m as unknown as [string, string, string, string, string, string];
  const fromIndex = text.indexOf(fromName);
  const toIndex = text.indexOf(toName, text.indexOf(arrow) + 2);
  return {
    kind: arrow === '->' ? 'push' : 'query',
    from: { name: fromName, port: fromPort, at: file.atChar(item, fromIndex), portAt: file.atChar(item, fromIndex + fromName.length + 1) },
    to: { name: toName, port: toPort, at: file.atChar(item, toIndex), portAt: file.atChar(item, toIndex + toName.length + 1) },
    at: file.at(item),
    text: text.trim(),
  };
}
