/**
 * Host ports a container's ports are published on, chosen at placement and kept: docker's
 * restart policy starts a crashed container on the same ports, so routes, endpoints and the
 * addresses dependents hold stay right. A range below Linux's ephemeral ports (32768–60999),
 * as Kubernetes' NodePorts, so that no outgoing connection holds one of them.
 */
export const HOST_PORT_RANGE = { from: 30000, to: 32767 } as const;

/**
 * `count` ports of the range that are not `used`, going up from `next` and round to the
 * range's start (as the kernel hands out ephemeral ports: a port just freed is not handed out
 * again at once, so a client that still holds the old address does not reach a new, different
 * container), or undefined when the range has not that many left. Pure.
 */
export function pickHostPorts(count: number, used: ReadonlySet<number>, next: number = HOST_PORT_RANGE.from,
  range: { from: number; to: number } = HOST_PORT_RANGE): number[] | undefined {
  const size = range.to - range.from + 1;
  const start = next >= range.from && next <= range.to ? next - range.from : 0;
  const picked: number[] = [];
  for (let i = 0; i < size && picked.length < count; i++) {
    const port = range.from + ((start + i) % size);
    if (!used.has(port)) picked.push(port);
  }
  return picked.length === count ? picked : undefined;
}
