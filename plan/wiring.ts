import type { PortSpec, StackSpec } from '../compiler/index.js';
// The wiring format is the runtime's: it parses QUARRY_WIRING and, a lower layer, cannot import
// the plan. Only its types are taken (runtime/wiring-format.ts, no code), the contract between the two.
import type { OutPortWiring, PortWiring, Target, Wiring } from '../runtime/index.js';

/**
 * Where the members of a stack's units live: the one thing that differs between running
 * the stack as processes (loopback ports), as containers on one network (names and fixed
 * ports) and on a cluster (server addresses). The rest of the wiring follows from the stack.
 */
export interface WiringAddressing {
  /** How many members each element has now (its scale; 1 for nodes). */
  members(name: string): number;
  /** Where member `member` (0-based) of `name` binds in port `port`: e.g. `tcp://0.0.0.0:7001`. */
  bind(name: string, member: number, port: string): string;
  /** Where peers reach that in port: e.g. `tcp://docsearch.index.1:7001` or `tcp://127.0.0.1:41234`. */
  endpoint(name: string, member: number, port: string): string;
  /** The stable id of a member (survives restarts): e.g. `index.0`. */
  memberId?(name: string, member: number): string;
  /** Control socket bind of a member, when wanted. */
  control?(name: string, member: number): string | undefined;
}

/** A unit that takes part in the topology: an element, or a node with `ports:`. */
function portsOf(stack: StackSpec, name: string): { ports: Record<string, PortSpec>; element?: StackSpec['elements'][number] } {
  const element = stack.elements.find((e) => e.name === name);
  if (element) {
    const cls = stack.classes.find((c) => c.name === element.class);
    if (!cls) throw new Error(`stack ${stack.name}: element ${name} has class ${element.class}, which is not compiled`);
    return { ports: cls.ports, element };
  }
  const node = stack.nodes.find((n) => n.name === name);
  if (!node) throw new Error(`stack ${stack.name}: no element or node named ${name}`);
  return { ports: node.ports };
}

/**
 * The runtime's wiring for one member of an element or of a node with ports: each in port
 * binds where the addressing says; each out port targets every member of every in port it
 * is connected to. Pushes spread over a target by the target's shard (`hash:<field>`, or
 * round-robin); queries ask every member, so they carry no spread.
 */
export function unitWiring(stack: StackSpec, name: string, member: number, addressing: WiringAddressing): Wiring {
  const { ports, element } = portsOf(stack, name);
  const wired: Record<string, PortWiring> = {};
  for (const portName of Object.keys(ports).sort()) {
    const port = ports[portName]!;
    if (port.dir === 'in') {
      wired[portName] = { kind: port.kind, dir: 'in', bind: addressing.bind(name, member, portName) };
      continue;
    }
    const targets: Target[] = [];
    for (const c of stack.connections) {
      if (c.from.name !== name || c.from.port !== portName) continue;
      const to = c.to.name;
      const by = c.kind === 'push' ? stack.elements.find((e) => e.name === to)?.shard?.by : undefined;
      const count = addressing.members(to);
      const members = Array.from({ length: count }, (_, m) => ({
        id: addressing.memberId?.(to, m) ?? `${to}.${m}`,
        endpoint: addressing.endpoint(to, m, c.to.port),
      }));
      targets.push({ element: to, port: c.to.port, ...(by !== undefined && by !== 'round-robin' && { by }), members });
    }
    const out: OutPortWiring = { kind: port.kind, dir: 'out', targets };
    wired[portName] = out;
  }
  const control = addressing.control?.(name, member);
  return {
    stack: stack.name,
    element: name,
    ...(element && { class: element.class }),
    member,
    members: addressing.members(name),
    ...(element && { config: element.config }),
    ...(control !== undefined && { control }),
    ports: wired,
  };
}

/** The first container port given to in ports; the next ones follow in port-name order. */
export const FIRST_IN_PORT = 7001;

/**
 * A fixed container port for each in port of a unit (7001, 7002, ... in port-name order),
 * for docker where every container has its own address.
 */
export function inPortNumbers(stack: StackSpec, name: string): Record<string, number> {
  const { ports } = portsOf(stack, name);
  const numbers: Record<string, number> = {};
  let next = FIRST_IN_PORT;
  for (const portName of Object.keys(ports).sort()) {
    if (ports[portName]!.dir === 'in') numbers[portName] = next++;
  }
  return numbers;
}

/** Whether a unit takes part in the topology (an element, or a node with ports). */
export function isWired(stack: StackSpec, name: string): boolean {
  if (stack.elements.some((e) => e.name === name)) return true;
  const node = stack.nodes.find((n) => n.name === name);
  return node !== undefined && Object.keys(node.ports).length > 0;
}
