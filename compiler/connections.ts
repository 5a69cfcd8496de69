import type { FaultList, Position } from './faults.js';
import type { ConnectionSpec, PortSpec } from './model.js';
import { noSuchPort } from './ports.js';
import { didYouMean, quoteList } from './suggest.js';
import type { ConnectionRef, EndRef } from './topology.js';

/** Something a connection may name: an element (ports from its class) or a node. */
export interface Participant {
  what: string;
  ports: Record<string, PortSpec>;
  /** Ports that failed to parse, or a class that could not be read: say nothing more. */
  broken: Set<string> | 'all';
}

/**
 * Type-checks the connections: both ends exist; out feeds in; push with push and query
 * with query; each field an `in` port needs is produced by every `out` port that feeds it;
 * no connection twice; no cycle of queries (an element waiting on its own asker).
 */
export function checkConnections(
  refs: ConnectionRef[], participants: Map<string, Participant>, faults: FaultList,
): ConnectionSpec[] {
  const out: ConnectionSpec[] = [];
  const seen = new Map<string, Position>();
  for (const ref of refs) {
    const key = `${ref.from.name}.${ref.from.port}${ref.kind === 'push' ? '->' : '=>'}${ref.to.name}.${ref.to.port}`;
    const twice = seen.get(key);
    if (twice) {
      faults.add(ref.at, `'${ref.text}' is listed twice (first on line ${twice.line})`);
      continue;
    }
    seen.set(key, ref.at);
    const from = resolve(ref.from, 'out', ref, participants, faults);
    const to = resolve(ref.to, 'in', ref, participants, faults);
    if (!from || !to) continue;
    const arrow = ref.kind === 'push' ? '->' : '=>';
    const wrong = [{ end: ref.from, port: from.port }, { end: ref.to, port: to.port }].filter((e) => e.port.kind !== ref.kind);
    if (wrong.length === 2) {
      const fix = ref.kind === 'push' ? "use '=>', which joins query ports" : "use '->', which joins push ports";
      faults.add(ref.at, `'${ref.text}' joins two ${from.port.kind} ports with '${arrow}'; ${fix}`);
      continue;
    }
    if (wrong.length === 1) {
      const { end, port } = wrong[0]!;
      faults.add(end.portAt, `${end.name}.${end.port} is a ${port.kind} port, but '${arrow}' joins ${ref.kind} ports: push connects only with push, query only with query`);
      continue;
    }
    const missing = to.port.fields.filter((f) => !from.port.fields.includes(f));
    if (missing.length > 0) {
      const fields = missing.length === 1 ? `field '${missing[0]}'` : `fields ${quoteList(missing)}`;
      const produced = from.port.fields.length ? `it carries ${quoteList(from.port.fields)}` : 'it declares no fields';
      faults.add(ref.to.portAt, `${ref.to.name}.${ref.to.port} needs ${fields}, which ${ref.from.name}.${ref.from.port} does not produce (${produced}); add ${missing.length === 1 ? 'it' : 'them'} to the fields of ${ref.from.name}'s '${ref.from.port}' port`);
      continue;
    }
    out.push({ kind: ref.kind, from: { name: ref.from.name, port: ref.from.port }, to: { name: ref.to.name, port: ref.to.port } });
  }
  checkQueryCycles(refs, out, faults);
  return out;
}

function resolve(
  end: EndRef, dir: 'in' | 'out', ref: ConnectionRef, participants: Map<string, Participant>, faults: FaultList,
): { port: PortSpec } | undefined {
  const who = participants.get(end.name);
  if (!who) {
    faults.add(end.at, `unknown element or node '${end.name}'${didYouMean(end.name, participants.keys())}`);
    return undefined;
  }
  if (who.broken === 'all' || who.broken.has(end.port)) return undefined;
  const port = who.ports[end.port];
  if (!port) {
    faults.add(end.portAt, `${who.what} ${noSuchPort(end.port, Object.keys(who.ports))}`);
    return undefined;
  }
  if (port.dir !== dir) {
    const side = dir === 'out' ? 'left' : 'right';
    faults.add(end.portAt, `${end.name}.${end.port} is an '${port.dir}' port, but the ${side} side of '${ref.text}' must be an '${dir}' port: a connection goes from an out port to an in port`);
    return undefined;
  }
  return { port };
}

/** A cycle of query connections deadlocks once every member waits; report each once. */
function checkQueryCycles(refs: ConnectionRef[], ok: ConnectionSpec[], faults: FaultList): void {
  const edges = new Map<string, Array<{ to: string; at: Position }>>();
  const valid = new Set(ok.filter((c) => c.kind === 'query').map((c) => `${c.from.name}.${c.from.port}=>${c.to.name}.${c.to.port}`));
  for (const ref of refs) {
    if (ref.kind !== 'query' || !valid.has(`${ref.from.name}.${ref.from.port}=>${ref.to.name}.${ref.to.port}`)) continue;
    const list = edges.get(ref.from.name) ?? [];
    list.push({ to: ref.to.name, at: ref.at });
    edges.set(ref.from.name, list);
  }
  // Iterative depth-first search; a grey node met again closes a cycle.
  const colour = new Map<string, 'grey' | 'black'>();
  for (const start of edges.keys()) {
    if (colour.has(start)) continue;
    const path: string[] = [];
    const stack: Array<{ name: string; next: number }> = [{ name: start, next: 0 }];
    colour.set(start, 'grey');
    path.push(start);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const out = edges.get(frame.name) ?? [];
      if (frame.next >= out.length) {
        colour.set(frame.name, 'black');
        stack.pop();
        path.pop();
        continue;
      }
      const edge = out[frame.next++]!;
      const state = colour.get(edge.to);
      if (state === 'grey') {
        const cycle = [...path.slice(path.indexOf(edge.to)), edge.to];
        faults.add(edge.at, `query connections form a cycle: ${cycle.join(' => ')}; each would wait on an answer that waits on it. Break the cycle, e.g. by pushing the data one way instead`);
      } else if (state === undefined) {
        colour.set(edge.to, 'grey');
        path.push(edge.to);
        stack.push({ name: edge.to, next: 0 });
      }
    }
  }
}
