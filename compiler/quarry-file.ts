import { isMap, isScalar, type Node } from 'yaml';
import type { FaultList, Position } from './faults.js';
import { MapReader } from './map-reader.js';
import type { NodeSpec, NodeType } from './model.js';
import { DOMAIN, ENV_KEY, IMAGE, NAME, NAME_RULE, serviceEnvNames } from './names.js';
import { readPorts } from './ports.js';
import { readRestart } from './restart.js';
import { checkRepoPath } from './repo-path.js';
import type { SourceTree } from './source-tree.js';
import { describe, entries, type YamlFile } from './yaml-file.js';

const TOP_KEYS = ['version', 'name', 'env', 'nodes', 'topology', 'autoscale'] as const;
const AUTOSCALE_KEYS = ['enabled', 'max_instances'] as const;
const NODE_KEYS = ['type', 'image', 'build', 'command', 'port', 'memory', 'domains', 'tls', 'health', 'scale', 'ports', 'restart'] as const;
export const DEFAULT_MEMORY = 128;

/** What quarry.yml says, each part with the place it was said. */
export interface QuarryFile {
  name?: string;
  env: Record<string, string>;
  nodes: NodeSpec[];
  /** Where each node and each of its ports is declared. */
  nodeAt: Map<string, Position>;
  /** Node ports that failed to parse: connections to them are not reported again. */
  brokenPorts: Map<string, Set<string>>;
  topology?: { file: string; at: Position } | { inline: Node; at: Position };
  /** `autoscale:` as written, with where its cap was written (checked against the elements once they are known). */
  autoscale?: { enabled: boolean; maxInstances?: number; capAt?: Position };
}

export function readQuarryFile(file: YamlFile, tree: SourceTree, faults: FaultList): QuarryFile {
  const out: QuarryFile = { env: {}, nodes: [], nodeAt: new Map(), brokenPorts: new Map() };
  if (!file.ok) return out;
  const top = MapReader.of(file, faults, 'quarry.yml', file.root, file.at(file.root), TOP_KEYS);
  if (!top) return out;

  if (top.has('version')) {
    const version = top.raw('version');
    if (!isScalar(version) || (version.value !== 1 && version.value !== '1')) {
      faults.add(top.valueAt('version'), `quarry.yml: this quarry reads version 1, not ${describe(version)}`);
    }
  }
  const name = top.string('name');
  if (name !== undefined && !NAME.test(name)) {
    faults.add(top.valueAt('name'), `stack name '${name}' must have ${NAME_RULE} (at most 63)`);
  } else if (name !== undefined) {
    out.name = name;
  }

  readEnv(top, faults, out);
  readNodes(top, tree, faults, out);
  checkEnvAgainstServices(top, faults, out);

  readAutoscale(top, faults, out);

  if (top.has('topology')) {
    const value = top.raw('topology');
    if (isMap(value)) {
      out.topology = { inline: value, at: top.valueAt('topology') };
    } else if (isScalar(value) && typeof value.value === 'string') {
      out.topology = { file: value.value, at: top.valueAt('topology') };
    } else {
      faults.add(top.valueAt('topology'), `'topology' must be a file name (e.g. ./topology.yml) or a mapping with elements and connections, not ${describe(value)}`);
    }
  }
  if (out.nodes.length === 0 && !top.has('topology') && faults.size === 0) {
    faults.add(top.anchor, `quarry.yml declares no nodes and no topology: there is nothing to run`);
  }
  return out;
}

/** `autoscale: {enabled, max_instances}`: whether load shards are sized by load, and the most element instances the stack may run. */
function readAutoscale(top: MapReader, faults: FaultList, out: QuarryFile): void {
  const r = top.map('autoscale', 'autoscale', AUTOSCALE_KEYS);
  if (!r) return;
  const enabled = r.bool('enabled') ?? true;
  const maxInstances = r.int('max_instances', 1, 10_000);
  out.autoscale = { enabled, ...(maxInstances !== undefined && { maxInstances, capAt: r.valueAt('max_instances') }) };
}

function readEnv(top: MapReader, faults: FaultList, out: QuarryFile): void {
  if (!top.has('env')) return;
  const env = top.raw('env');
  if (!isMap(env)) {
    faults.add(top.valueAt('env'), `'env' must be a mapping of names to values, not ${describe(env)}`);
    return;
  }
  for (const { key, pair } of entries(env)) {
    const at = top.file.at(pair.key);
    if (!ENV_KEY.test(key)) {
      faults.add(at, `env '${key}': a name has letters, digits and _, and does not start with a digit`);
      continue;
    }
    if (key.startsWith('QUARRY_')) {
      faults.add(at, `env '${key}': names starting with QUARRY_ are set by quarry itself; choose another name`);
      continue;
    }
    const value = pair.value;
    if (value === null || (isScalar(value) && value.value === null)) {
      out.env[key] = '';
    } else if (isScalar(value) && ['string', 'number', 'boolean'].includes(typeof value.value)) {
      out.env[key] = String(value.value);
    } else {
      faults.add(top.file.at(value), `env '${key}' must be text, a number or true/false, not ${describe(value)}`);
    }
  }
}

function readNodes(top: MapReader, tree: SourceTree, faults: FaultList, out: QuarryFile): void {
  if (!top.has('nodes')) return;
  const nodes = top.raw('nodes');
  if (!isMap(nodes)) {
    faults.add(top.valueAt('nodes'), `'nodes' must be a mapping of node names to their settings, not ${describe(nodes)}`);
    return;
  }
  const domainOwner = new Map<string, { node: string; at: Position }>();
  for (const { key: name, pair } of entries(nodes)) {
    const at = top.file.at(pair.key);
    const what = `node '${name}'`;
    if (!NAME.test(name)) faults.add(at, `${what}: a node name has ${NAME_RULE}`);
    out.nodeAt.set(name, at);
    const r = MapReader.of(top.file, faults, what, pair.value, at, NODE_KEYS);
    if (!r) continue;
    const type: NodeType = r.oneOf('type', ['service', 'web', 'worker'] as const) ?? 'worker';
    // With a type that could not be read, the checks that depend on it would only mislead.
    const typeKnown = !r.has('type') || r.oneOf('type', ['service', 'web', 'worker'] as const, false) !== undefined;
    const node: NodeSpec = {
      name, type, memory: DEFAULT_MEMORY, domains: [], scale: 1, ports: {},
    };

    const image = r.string('image');
    const build = r.string('build');
    if (image !== undefined && build !== undefined) {
      faults.add(r.keyAt('build'), `${what}: has both 'image' and 'build'; give one: an image to run, or a folder with a Dockerfile to build`);
    } else if (image === undefined && build === undefined && !r.has('image') && !r.has('build')) {
      faults.add(at, `${what}: needs 'image' (e.g. image: redis:7) or 'build' (a folder with a Dockerfile)`);
    }
    if (image !== undefined) {
      if (!IMAGE.test(image)) faults.add(r.valueAt('image'), `${what}: '${image}' is not a docker image reference (e.g. redis:7 or registry.example.com/team/app:1.2)`);
      else node.image = image;
    }
    if (build !== undefined) {
      const folder = checkFolder(tree, build);
      if (typeof folder === 'object') faults.add(r.valueAt('build'), `${what}: ${folder.fault}`);
      else node.build = folder;
    }

    const command = readCommand(r, faults, what);
    if (command) node.command = command;

    const port = r.int('port', 1, 65535);
    if (port !== undefined) node.port = port;
    if (typeKnown && type === 'web' && !r.has('port')) {
      faults.add(at, `${what}: a web node needs 'port', the port its server listens on (e.g. port: 8080)`);
    }
    if (typeKnown && type === 'service' && !r.has('port')) {
      faults.add(at, `${what}: a service needs 'port', the port it listens on, so that the others reach it through ${serviceEnvNames(name).host} and ${serviceEnvNames(name).port}`);
    }
    node.memory = r.int('memory', 16, 1_048_576, ' (MB)') ?? DEFAULT_MEMORY;

    const scale = r.int('scale', 0, 1000);
    if (scale !== undefined) node.scale = scale;
    if (type === 'service' && scale !== undefined && scale !== 1) {
      faults.add(r.valueAt('scale'), `${what}: a service always runs exactly one container; remove 'scale' or make it a worker`);
    }

    const domains = r.stringList('domains');
    if (typeKnown && domains && type !== 'web') {
      faults.add(r.keyAt('domains'), `${what}: only web nodes answer domains; this one is a ${type} (set type: web)`);
    }
    for (const d of domains ?? []) {
      const domain = d.value.toLowerCase();
      if (!DOMAIN.test(domain)) {
        faults.add(top.file.at(d.node), `${what}: '${d.value}' is not a domain name (a host name, optionally starting with '*.', and no port)`);
        continue;
      }
      const owner = domainOwner.get(domain);
      if (owner) {
        faults.add(top.file.at(d.node), owner.node === name
          ? `${what}: domain '${domain}' is listed twice`
          : `${what}: domain '${domain}' is already answered by node '${owner.node}' (line ${owner.at.line}); a domain goes to one node`);
        continue;
      }
      domainOwner.set(domain, { node: name, at: top.file.at(d.node) });
      node.domains.push(domain);
    }

    if (r.has('tls')) {
      if (r.oneOf('tls', ['auto'] as const, false) === undefined) {
        faults.add(r.valueAt('tls'), `${what}: 'tls' can only be 'auto' (HQ gets and renews its domains' certificates by ACME), ` +
          `not '${String(r.raw('tls')).trim()}'; for a certificate of your own, leave 'tls' out and use quarry certs add`);
      } else if (typeKnown && type !== 'web') {
        faults.add(r.keyAt('tls'), `${what}: only web nodes answer HTTPS; this one is a ${type}`);
      } else if (node.domains.length === 0) {
        faults.add(r.keyAt('tls'), `${what}: 'tls: auto' needs 'domains' to get certificates for`);
      } else if (node.domains.some((d) => d.startsWith('*.'))) {
        faults.add(r.keyAt('tls'), `${what}: 'tls: auto' cannot cover a '*.' domain (ACME's HTTP-01 proves one name at a time); ` +
          'add a wildcard certificate with quarry certs add instead');
      } else node.tls = 'auto';
    }

    const health = r.string('health', ' (a path such as /healthz)');
    if (health !== undefined) {
      if (typeKnown && type !== 'web') faults.add(r.keyAt('health'), `${what}: only web nodes have a 'health' path; this one is a ${type}`);
      else if (!health.startsWith('/')) faults.add(r.valueAt('health'), `${what}: 'health' must be a path starting with /, such as /healthz, not '${health}'`);
      else node.health = health;
    }

    const restart = readRestart(r, what);
    if (restart) node.restart = restart;

    if (r.has('ports')) {
      if (type === 'service') {
        faults.add(r.keyAt('ports'), `${what}: a service runs an image of its own and cannot take part in the topology; only web and worker nodes have 'ports'`);
      } else {
        const { ports, broken } = readPorts(top.file, faults, what, r.raw('ports'));
        node.ports = ports;
        out.brokenPorts.set(name, broken);
      }
    }
    out.nodes.push(node);
  }
}

function readCommand(r: MapReader, faults: FaultList, what: string): string[] | undefined {
  if (!r.has('command')) return undefined;
  const raw = r.raw('command');
  if (isScalar(raw) && typeof raw.value === 'string') return ['sh', '-c', raw.value];
  const list = r.stringList('command');
  if (list && list.length === 0) faults.add(r.valueAt('command'), `${what}: 'command' is an empty list`);
  return list && list.length > 0 ? list.map((c) => c.value) : undefined;
}

/** A build folder: inside the repo, a folder, with a Dockerfile. */
export function checkFolder(tree: SourceTree, path: string): string | { fault: string } {
  const checked = checkRepoPath(path, 'build folder', './web');
  if ('fault' in checked) return checked;
  const folder = checked.path;
  if (!tree.isDirectory(folder) || tree.isFile(folder)) return { fault: `build folder '${path}' does not exist` };
  if (!tree.isFile(`${folder === '' ? '' : folder + '/'}Dockerfile`)) return { fault: `build folder '${path}' has no Dockerfile` };
  return folder;
}

/** A value in env that quarry sets itself from a service is a conflict, not an override. */
function checkEnvAgainstServices(top: MapReader, faults: FaultList, out: QuarryFile): void {
  const env = top.raw('env');
  if (!isMap(env)) return;
  for (const node of out.nodes) {
    if (node.type !== 'service') continue;
    const names = serviceEnvNames(node.name);
    for (const { key, pair } of entries(env)) {
      if (key === names.host || key === names.port) {
        faults.add(top.file.at(pair.key), `env '${key}' is set by quarry to service '${node.name}''s address; remove it from env (or rename the service)`);
      }
    }
  }
}

