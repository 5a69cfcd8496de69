import type { PeerChange, PeerSource } from './peers.js';
import type { Member, Target, Wiring } from './wiring-format.js';

/**
 * What the runtime needs of an endpoint record (`/quarry/stacks/<stack>/endpoints/<unit>/<member>`,
 * the launcher's `EndpointRecord`): where the member is reached, and the number each of its in
 * ports is reached on there. The runtime reads no etcd; whoever does hands it these.
 */
export interface EndpointRecordLike {
  host: string;
  ports: Readonly<Record<string, number>>;
}

/** The endpoint records of one element, by member number. */
export type MemberRecords = ReadonlyMap<number, EndpointRecordLike>;

/**
 * The id the wiring gives member `member` of `element` (plan/wiring.ts: `<element>.<member>`).
 * A port keeps a member whose id and endpoint are unchanged, so the two must agree.
 */
export function endpointMemberId(element: string, member: number): string {
  return `${element}.${member}`;
}

/** `tcp://host:port`, an IPv6 address in brackets. */
function tcpEndpoint(host: string, port: number): string {
  return `tcp://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

function usable(record: EndpointRecordLike | undefined, port: string): number | undefined {
  if (record === undefined || typeof record.host !== 'string' || record.host === '') return undefined;
  const n = record.ports?.[port];
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/**
 * An out port's targets as the endpoint records say: each target of `current` (same element,
 * port and spread, in the same order) with one member per record of its element that has the
 * target's in port, in member order, `{ id: <element>.<member>, endpoint: tcp://<host>:<port> }`.
 *
 * A target whose element has no records at all (`records` has no entry, or an empty one) keeps
 * its members as they are: no records means nothing is known (not yet written, or the writer's
 * lease ran out), not that no member runs; emptying the target would stall the port for nothing.
 * A target is never dropped (a dropped target's logs would be dropped with it).
 */
export function endpointTargets(current: readonly Target[], records: ReadonlyMap<string, MemberRecords>): Target[] {
  return current.map((target) => {
    const of = records.get(target.element);
    if (of === undefined || of.size === 0) return { ...target, members: target.members.map((m) => ({ ...m })) };
    const members: Member[] = [];
    for (const member of [...of.keys()].filter((m) => Number.isInteger(m) && m >= 0).sort((a, b) => a - b)) {
      const record = of.get(member);
      const port = usable(record, target.port);
      if (port !== undefined) members.push({ id: endpointMemberId(target.element, member), endpoint: tcpEndpoint(record!.host, port) });
    }
    return { ...target, members };
  });
}

/** Whether two target lists are the same to a port: elements, ports, spreads and members (id and endpoint) in order. */
export function sameTargets(a: readonly Target[], b: readonly Target[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    if (x.element !== y.element || x.port !== y.port || (x.by ?? 'round-robin') !== (y.by ?? 'round-robin')) return false;
    if (x.members.length !== y.members.length) return false;
    return x.members.every((m, j) => m.id === y.members[j]!.id && m.endpoint === y.members[j]!.endpoint);
  });
}

/**
 * Where endpoint records come from: something that reads them (etcd) and reports each
 * element's records whole whenever they change. `watch` may report at once what it knows.
 */
export interface EndpointFeed {
  watch(onRecords: (element: string, records: MemberRecords) => void): void | Promise<void>;
  close(): void | Promise<void>;
}

/**
 * A PeerSource that follows endpoint records: it starts from the wiring's out ports and, on
 * each report of an element's records, gives every out port with a target at that element
 * its targets anew (`endpointTargets`), when they differ from what the port has.
 */
export class EndpointPeerSource implements PeerSource {
  private readonly ports = new Map<string, Target[]>();
  private readonly records = new Map<string, MemberRecords>();
  private listener: ((change: PeerChange) => void) | undefined;

  constructor(private readonly feed: EndpointFeed, wiring: Pick<Wiring, 'ports'>) {
    for (const [name, port] of Object.entries(wiring.ports)) {
      if (port.dir === 'out') this.ports.set(name, port.targets.map((t) => ({ ...t, members: [...t.members] })));
    }
  }

  async watch(onChange: (change: PeerChange) => void): Promise<void> {
    this.listener = onChange;
    await this.feed.watch((element, records) => this.take(element, records));
  }

  /** The targets each out port has now, as this source last gave them. */
  targets(port: string): Target[] | undefined {
    return this.ports.get(port);
  }

  private take(element: string, records: MemberRecords): void {
    this.records.set(element, new Map(records));
    for (const [port, current] of this.ports) {
      if (!current.some((t) => t.element === element)) continue;
      const next = endpointTargets(current, this.records);
      if (sameTargets(current, next)) continue;
      this.ports.set(port, next);
      this.listener?.({ port, targets: next });
    }
  }

  async close(): Promise<void> {
    this.listener = undefined;
    await this.feed.close();
  }
}
