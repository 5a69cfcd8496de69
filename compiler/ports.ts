import { isMap, type Node } from 'yaml';
import type { FaultList } from './faults.js';
import { MapReader } from './map-reader.js';
import type { PortSpec } from './model.js';
import { PORT, PORT_RULE } from './names.js';
import { didYouMean } from './suggest.js';
import { describe, entries, type YamlFile } from './yaml-file.js';

const PORT_KEYS = ['kind', 'dir', 'fields'] as const;

/**
 * A `ports:` mapping, of an element class or of a node: `name: { kind, dir, fields }`.
 * Ports that are broken are left out, and their names returned in `broken` so that
 * connections to them are not reported a second time.
 */
export function readPorts(
  file: YamlFile, faults: FaultList, owner: string, node: Node | null | undefined,
): { ports: Record<string, PortSpec>; broken: Set<string> } {
  const ports: Record<string, PortSpec> = {};
  const broken = new Set<string>();
  if (node === undefined || node === null) return { ports, broken };
  if (!isMap(node)) {
    faults.add(file.at(node), `${owner}: 'ports' must be a mapping of port names to { kind, dir, fields }, not ${describe(node)}`);
    return { ports, broken };
  }
  for (const { key, pair } of entries(node)) {
    const what = `${owner}, port '${key}'`;
    const before = faults.size;
    if (!PORT.test(key)) faults.add(file.at(pair.key), `${what}: a port name has ${PORT_RULE}`);
    const reader = MapReader.of(file, faults, what, pair.value, file.at(pair.key), PORT_KEYS);
    const kind = reader?.oneOf('kind', ['push', 'query'] as const);
    const dir = reader?.oneOf('dir', ['in', 'out'] as const);
    if (reader && !reader.has('kind')) faults.add(reader.anchor, `${what}: needs 'kind: push' or 'kind: query'`);
    if (reader && !reader.has('dir')) faults.add(reader.anchor, `${what}: needs 'dir: in' or 'dir: out'`);
    const fields = reader?.stringList('fields') ?? [];
    const seen = new Set<string>();
    for (const field of fields) {
      if (seen.has(field.value)) faults.add(file.at(field.node), `${what}: field '${field.value}' is listed twice`);
      seen.add(field.value);
    }
    if (faults.size > before || !kind || !dir) {
      broken.add(key);
      continue;
    }
    ports[key] = { kind, dir, fields: [...seen] };
  }
  return { ports, broken };
}

/** "has no port 'x'; did you mean 'y'? (its ports: a, b)" */
export function noSuchPort(port: string, known: Iterable<string>): string {
  const names = [...known];
  const guess = didYouMean(port, names);
  return `has no port '${port}'${guess}${guess ? '' : names.length ? ` (its ports: ${names.join(', ')})` : ' (it declares no ports)'}`;
}
