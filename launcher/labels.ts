/** The docker labels by which quarry finds its containers again (DESIGN.md, docker conventions). */
export const LABELS = {
  stack: 'quarry.stack',
  name: 'quarry.name',
  kind: 'quarry.kind',
  release: 'quarry.release',
  slice: 'quarry.slice',
  digest: 'quarry.digest',
  /** The member number (0-based) a container plays in its unit: stable across deploys, unlike `<n>`. */
  member: 'quarry.member',
  /** The container port it serves on (`port:` of its node), when it has one. */
  port: 'quarry.port',
  /** Its restart policy (plan/restart.ts's `restartLabel`), which the server's caretaker follows. */
  restart: 'quarry.restart',
} as const;

/** `<stack>.<name>.<n>`: the name of a container, and the slice it fills. */
export function containerName(stack: string, name: string, n: number): string {
  return `${stack}.${name}.${n}`;
}

/** One bridge network per stack (per server). */
export function networkName(stack: string): string {
  return `quarry-${stack}`;
}
