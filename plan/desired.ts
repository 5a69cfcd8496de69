import { dataDigest, keyedDigest, type ConnectionSpec, type RestartSpec, type StackSpec } from '../compiler/index.js';
import type { DesiredUnit, DigestOptions, UnitDefinition } from './model.js';
import { DEFAULT_RESTART, type RestartPolicy } from './restart.js';

/**
 * The key of digests that are only shown, never put on a container: `quarry build`'s plans
 * (whose JSON holds the env values in plain anyway) and a push's plan when HQ runs nothing.
 * It is public, so a digest made with it hides nothing: never use it for what runs.
 */
export const PREVIEW_DIGEST_KEY = 'quarry-preview: a public key, for plans that are only shown';

/**
 * The units a stack wants, in launch order: services first (others need their address),
 * then elements with consumers before their producers (so a producer's first push finds
 * its consumer up), then web and worker nodes. Each with its digest: the keyed digest of
 * its definition (`keyedDigest` with `options.digestKey`), since it covers the stack's env;
 * a service's, which covers no env (a service gets none), is its plain `dataDigest`, so that
 * a new key never makes a service look changed (a push never restarts one).
 */
export function desiredUnits(stack: StackSpec, options: DigestOptions): DesiredUnit[] {
  if (typeof options?.digestKey !== 'string' || options.digestKey === '') throw new RangeError('desiredUnits: a digest key is needed');
  return definitions(stack).map(({ unit, identity }) => ({
    ...unit,
    digest: unit.kind === 'service' ? dataDigest(identity) : keyedDigest(options.digestKey, identity),
  }));
}

/** The units a stack wants, as `desiredUnits` gives them, without digests (images, scale, builds need none). */
export function unitDefinitions(stack: StackSpec): UnitDefinition[] {
  return definitions(stack).map(({ unit }) => unit);
}

/** Each unit with its identity: everything that, when it changes, needs new containers. */
function definitions(stack: StackSpec): Array<{ unit: UnitDefinition; identity: Record<string, unknown> }> {
  const units: Array<{ unit: UnitDefinition; identity: Record<string, unknown> }> = [];
  const touching = new Map<string, ConnectionSpec[]>();
  for (const c of stack.connections) {
    for (const name of new Set([c.from.name, c.to.name])) {
      const list = touching.get(name) ?? [];
      list.push(c);
      touching.set(name, list);
    }
  }
  const wiring = (name: string) => touching.get(name) ?? [];

  for (const node of stack.nodes.filter((n) => n.type === 'service')) {
    const image = node.image ?? buildTag(stack.name, node.name, node.buildDigest!);
    const restart = restartPolicy(node.restart);
    units.push({
      unit: {
        name: node.name, kind: 'service', image, memory: node.memory, scale: 1, domains: [], env: {},
        ...(node.build !== undefined && { build: { folder: node.build, dockerfile: true } }),
        ...(node.command && { command: node.command }),
        ...(node.port !== undefined && { port: node.port }),
        ...(restart && { restart }),
      },
      identity: { kind: 'service', image, command: node.command, port: node.port, memory: node.memory, restart },
    });
  }

  const classes = new Map(stack.classes.map((c) => [c.name, c]));
  for (const element of consumersFirst(stack)) {
    const cls = classes.get(element.class)!;
    const image = buildTag(stack.name, `class-${cls.name}`, cls.digest);
    const restart = restartPolicy(element.restart);
    units.push({
      unit: {
        name: element.name, kind: 'element', image, memory: element.memory, scale: element.scale, domains: [],
        build: { folder: cls.folder, dockerfile: cls.dockerfile, class: cls.name, ...(cls.main !== undefined && { main: cls.main }) },
        ...(element.shard && { shard: element.shard }),
        env: stack.env, config: element.config,
        ...(restart && { restart }),
      },
      identity: { kind: 'element', image, class: cls.name, main: cls.main, memory: element.memory, env: stack.env, config: element.config, shardBy: element.shard?.by, wiring: wiring(element.name), restart },
    });
  }

  for (const node of stack.nodes.filter((n) => n.type !== 'service')) {
    const image = node.image ?? buildTag(stack.name, node.name, node.buildDigest!);
    const kind = node.type === 'web' ? 'web' : 'worker';
    const restart = restartPolicy(node.restart);
    units.push({
      unit: {
        name: node.name, kind, image, memory: node.memory, scale: node.scale, domains: node.domains, env: stack.env,
        ...(node.build !== undefined && { build: { folder: node.build, dockerfile: true } }),
        ...(node.command && { command: node.command }),
        ...(node.port !== undefined && { port: node.port }),
        ...(node.health !== undefined && { health: node.health }),
        ...(restart && { restart }),
      },
      identity: { kind, image, command: node.command, port: node.port, health: node.health, memory: node.memory, env: stack.env, ports: node.ports, wiring: wiring(node.name), restart },
    });
  }
  return units;
}

/**
 * The policy a unit's `restart:` asks for, its missing parts from DEFAULT_RESTART (a `delay`
 * above the default's longest wait raises that too); undefined when quarry.yml gives none,
 * which means DEFAULT_RESTART wherever a policy is read. A unit's digest covers it only when
 * given, so a stack without `restart:` keeps the digests it had before there was one.
 */
export function restartPolicy(spec: RestartSpec | undefined): RestartPolicy | undefined {
  if (spec === undefined) return undefined;
  const delayMs = spec.delayMs ?? DEFAULT_RESTART.delayMs;
  return {
    attempts: spec.attempts ?? DEFAULT_RESTART.attempts,
    intervalMs: spec.intervalMs ?? DEFAULT_RESTART.intervalMs,
    delayMs,
    maxDelayMs: spec.maxDelayMs ?? Math.max(DEFAULT_RESTART.maxDelayMs, delayMs),
  };
}

/** The tag a built image gets: named by its stack and unit, tagged by its content. */
export function buildTag(stack: string, name: string, digest: string): string {
  return `quarry/${stack}-${name}:${digest.slice(0, 12)}`;
}

/** Elements ordered so that each comes after every element it pushes to (sinks first). */
function consumersFirst(stack: StackSpec): StackSpec['elements'] {
  const byName = new Map(stack.elements.map((e) => [e.name, e]));
  const pushesTo = new Map<string, string[]>();
  for (const c of stack.connections) {
    if (c.kind !== 'push' || !byName.has(c.from.name) || !byName.has(c.to.name)) continue;
    const list = pushesTo.get(c.from.name) ?? [];
    list.push(c.to.name);
    pushesTo.set(c.from.name, list);
  }
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const order: StackSpec['elements'] = [];
  const visit = (name: string) => {
    if (placed.has(name) || visiting.has(name)) return; // push cycles are allowed; break them anywhere
    visiting.add(name);
    for (const next of pushesTo.get(name) ?? []) visit(next);
    visiting.delete(name);
    placed.add(name);
    order.push(byName.get(name)!);
  };
  for (const element of stack.elements) visit(element.name);
  return order;
}
