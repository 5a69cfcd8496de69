import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { StackSpec } from '../compiler/index.js';
import { QuarryError } from '../errors/index.js';
import {
  CONTROL_PORT, containerEnv, desiredUnits, inPortNumbers, isWired, loopbackKey, loopbackPeers, runContainerPeers, serviceEnv,
  type DesiredUnit, type Peers,
} from '../plan/index.js';
import { startRunAutoscaler, type RunAutoscaleOptions, type RunAutoscaler } from './autoscale.js';
import { buildRunImages, clearLeftovers, startRunCaretaker, sweepStack, UnitContainer } from './docker-mode.js';
import type { Caretaker } from '../launcher/index.js';
import { CannotRunError } from './errors.js';
import { freePort } from '../home/index.js';
import { newControlKey } from '../runtime/index.js';
import { PrefixedOutput } from './output.js';
import { ProcessUnit, type Readiness } from './process-unit.js';
import { resizeElement, retellProducer, type ResizeHost, type RunMember } from './resize.js';
import { runFolder, runtimeImportOptions, runtimeMain } from './runtime-import.js';
import { LocalRoutes, urlsOf } from './web-routes.js';

export type RunMode = 'docker' | 'processes';

export interface RunOptions {
  /** The stack's folder (absolute). */
  dir: string;
  stack: StackSpec;
  mode: RunMode;
  /** The local port web nodes are reached through; 0 picks a free one. */
  port: number;
  /** The engine: every unit in docker mode; services without a command under --processes. */
  docker?: Docker;
  /** Units' output, prefixed. */
  out: NodeJS.WritableStream;
  color: boolean;
  /** Lines about the run itself (building, waiting, ready). */
  say: (line: string) => void;
  /** Env of child processes (processes mode): PATH and the like; the stack's env is added. */
  env?: NodeJS.ProcessEnv;
  /**
   * Aborted (Ctrl-C) while starting: stop at the next step and remove what was started. Once
   * running, an aborted signal also stops autoscale from resizing anything more.
   */
  signal?: AbortSignal;
  /**
   * How load shards (`shard: {min, max}`) are sized while the stack runs (docs/run.md,
   * "Autoscale in a run"): `false` leaves them at `min`; default on with the controller's
   * defaults. Nothing is sized when the stack has no load shard or quarry.yml says
   * `autoscale: {enabled: false}`.
   */
  autoscale?: false | RunAutoscaleOptions;
}

export interface RunningStack {
  stack: string;
  mode: RunMode;
  routerPort: number;
  /** One per web domain: `http://docsearch.localhost:PORT/`. */
  urls: string[];
  /** The same through 127.0.0.1 with a Host header, for clients that do not resolve *.localhost. */
  curls: string[];
  /** The run's control secret: its elements' control sockets answer only requests carrying it. */
  controlKey: string;
  /** Members each unit runs now (load shards change with autoscale). */
  sizes(): Record<string, number>;
  /** Where the runner reaches each wired member's control socket now (`name.member` → endpoint). */
  controls(): Promise<Record<string, string>>;
  /** Stops every unit (web nodes first, services last) and removes containers and network. */
  stop(graceMs?: number): Promise<void>;
}

/** Ctrl-C while a stack was starting: what was started is gone again. */
export class RunAbortedError extends QuarryError {}

/** A member started by the run: what stops it, and where its control socket is reached. */
type Started = RunMember;

/**
 * The grace a node's container gets to stop. Element code stops at once on SIGTERM (the
 * runtime handles it), but a node's server running as a container's first process often
 * ignores SIGTERM (the kernel gives PID 1 no default handler), and docker then waits the
 * whole grace before it kills it.
 */
const NODE_CONTAINER_GRACE_MS = 3000;

/**
 * Runs a whole stack on this machine: services first (their address goes into everyone's
 * env as `<NAME>_HOST`/`<NAME>_PORT`), then elements with consumers before producers, then
 * web and worker nodes, each member booted with the plan's `containerEnv` (its wiring made by
 * `unitWiring`) and waited for until it is up.
 * Web nodes are reached through one local port routing by Host. If anything fails to start,
 * what was started is stopped again before the error is thrown. Once everything is up, load
 * shards are sized by their load (`startRunAutoscaler`, unless `options.autoscale` is false).
 */
export async function runStack(options: RunOptions): Promise<RunningStack> {
  const { stack, dir, mode, say } = options;
  // The digests (`quarry.digest` labels) are keyed with a secret of this run's own: a run
  // starts every container afresh and never compares them, and the labels cover the env.
  const units = desiredUnits(stack, { digestKey: randomBytes(32).toString('hex') });
  const unitOf = new Map(units.map((u) => [u.name, u]));
  const output = new PrefixedOutput(options.out, options.color);
  // Load shards may grow up to their max: their prefixes are reserved from the start.
  const most = (u: DesiredUnit) => Math.max(u.scale, stack.elements.find((e) => e.name === u.name)?.shard?.max ?? 0);
  output.reserve(units.flatMap((u) => Array.from({ length: most(u) }, (_, m) => `${u.name}.${m}`)));
  const started: Started[] = [];
  const folder = runFolder();
  const controlKey = newControlKey();
  let routes: LocalRoutes | undefined;
  let docker: Docker | undefined;
  let caretaker: Caretaker | undefined;
  let autoscaler: RunAutoscaler | undefined;
  /** The unit line of each container started (`<stack>.<name>.<n>`), for the caretaker's lines. */
  const unitLines = new Map<string, { tell: (line: string) => void; container: UnitContainer; member: Started }>();
  const check = () => {
    if (options.signal?.aborted) throw new RunAbortedError('stopped while starting; everything started is gone again');
  };

  let stopCalled = false;
  const isStopping = () => stopCalled || options.signal?.aborted === true;
  const stopAll = async (graceMs: number) => {
    stopCalled = true;
    // Autoscale first: a resize under way finishes, and nothing is resized after it.
    await autoscaler?.stop().catch((err: Error) => say(`stopping autoscale failed: ${err.message}`));
    // Unit by unit in the reverse of the start order (web first, producers before their
    // consumers, services last); the members of one unit together.
    // First the caretaker: nothing is restarted while the run stops.
    await caretaker?.stop().catch((err: Error) => say(`stopping the caretaker failed: ${err.message}`));
    const all = started.splice(0);
    const order = [...new Set(all.map((s) => s.unit))].reverse();
    for (const name of order) {
      await Promise.all(all.filter((s) => s.unit === name).map((s) =>
        s.stop(graceMs).catch((err: Error) => say(`${s.label}: stopping failed: ${err.message}`))));
    }
    await routes?.close().catch(() => undefined);
    if (docker) await sweepStack(docker, stack.name).catch((err: Error) => say(`removing the stack's docker network failed: ${err.message}`));
    rmSync(folder, { recursive: true, force: true });
  };

  /** Members each unit runs now: its scale, changed by autoscale for load shards. */
  const sizes = new Map(units.map((u) => [u.name, u.scale]));
  /** Processes: the loopback port of every in port (`loopbackKey`) and control socket (`<name>/<member>/$control`) of every wired member. */
  const loopback = new Map<string, number>();
  /** Processes learn a service's address once it has started (a free port, or a container's published one); containers reach services by name, known up front. */
  const learned: Record<string, string> = {};
  let peers: Peers | undefined;
  let plan: { needsDocker: boolean; inDocker: Set<string> } | undefined;

  /** Picks the loopback ports of one wired member run as a process. */
  const pickPorts = async (unit: DesiredUnit, member: number) => {
    if (mode === 'docker' || !isWired(stack, unit.name)) return;
    for (const port of [...Object.keys(inPortNumbers(stack, unit.name)), '$control']) {
      const key = loopbackKey(unit.name, member, port);
      if (!loopback.has(key)) loopback.set(key, await freePort());
    }
  };
  const dropPorts = (unit: string, member: number) => {
    for (const key of [...loopback.keys()]) if (key.startsWith(`${loopbackKey(unit, member, '')}`)) loopback.delete(key);
  };

  /**
   * Starts one member and waits until it is up; it is then one of `started`. `wiredAs` is the
   * addressing its first start is wired with (a growing shard's new member counts the members
   * it will have); a process's restart is wired as the run is then.
   */
  const startMember = async (unit: DesiredUnit, member: number, wiredAs: Peers): Promise<Started> => {
    const label = `${unit.name}.${member}`;
    const write = output.writer(label, unit.name);
    const tell = (line: string) => output.line(label, `quarry: ${line}`, unit.name);
    const inDocker = mode === 'docker' || plan!.inDocker.has(unit.name);
    // Inside a container a unit listens on its own port; a process on a free one.
    const port = !inDocker && unit.port !== undefined ? await freePort() : undefined;
    await pickPorts(unit, member);
    // A local run gives a service no other service's address (HQ gives every container all of them).
    const envOf = (p: Peers) => containerEnv(stack, unit, member, unit.kind === 'service' ? { ...p, services: {} } : p, port !== undefined ? { port } : {});
    const wired = isWired(stack, unit.name);
    say(`starting ${label} (${unit.kind}) …`);

    if (inDocker) {
      // A service's port is published for the processes of a --processes run.
      const health = unit.kind === 'web' ? { port: unit.port, path: unit.health } : unit.kind === 'service' ? { port: unit.port } : {};
      const c = await UnitContainer.start(docker!, {
        stack: stack.name, name: unit.name, kind: unit.kind, n: member, image: unit.image, env: envOf(wiredAs),
        ...(unit.command && { command: unit.command }),
        ...(unit.port !== undefined && { port: unit.port }),
        memoryMb: unit.memory, digest: unit.digest,
        ...(unit.restart && { restart: unit.restart }),
      }, definedOnly(health), write);
      const s: Started = {
        unit: unit.name, member, label,
        stop: (g) => c.stop(unit.kind === 'element' ? g : Math.min(g, NODE_CONTAINER_GRACE_MS)),
        ...(wired && { control: async (refresh?: boolean) => { const ip = await c.address(refresh); return ip && `tcp://${ip}:${CONTROL_PORT}`; } }),
      };
      unitLines.set(c.container.name, { tell, container: c, member: s });
      if (unit.kind === 'service' && mode === 'processes') Object.assign(learned, serviceEnv(unit.name, '127.0.0.1', c.container.hostPort));
      if (unit.kind === 'web') routes!.add(unit.domains, label, `http://127.0.0.1:${c.container.hostPort}`);
      return s;
    }

    const program = commandOf(dir, unit, folder);
    let first = true;
    const p = await ProcessUnit.start({
      label, command: program.command, args: program.args, cwd: program.cwd,
      env: () => {
        const env = { ...(options.env ?? process.env), ...envOf(first ? wiredAs : peers!), ...program.env };
        first = false;
        return env;
      },
      readiness: readinessOf(unit, port), write, say: tell, stopping: isStopping,
      ...(unit.restart && { restart: unit.restart }),
      onFailed: (reason) => say(`${label} failed: ${reason}; it stays stopped until the next run, the rest of ${stack.name} keeps running`),
    });
    if (unit.kind === 'service') Object.assign(learned, serviceEnv(unit.name, '127.0.0.1', port));
    if (unit.kind === 'web') routes!.add(unit.domains, label, `http://127.0.0.1:${port}`);
    const control = wired ? `tcp://127.0.0.1:${loopback.get(loopbackKey(unit.name, member, '$control'))}` : undefined;
    return { unit: unit.name, member, label, stop: (g) => p.stop(g), ...(control !== undefined && { control: async () => control }) };
  };

  const running = (unit: string) => started.filter((s) => s.unit === unit).sort((a, b) => a.member - b.member);
  const resizeHost = (): ResizeHost => ({
    spec: stack, key: controlKey, peers: peers!, say,
    setSize: (element, n) => { sizes.set(element, n); },
    startMember: async (element, member, members) => {
      const s = await startMember(unitOf.get(element)!, member, { ...peers!, members: (name) => (name === element ? members : peers!.members(name)) });
      started.push(s);
      return s;
    },
    stopMember: async (member, graceMs) => {
      const at = started.indexOf(member);
      if (at >= 0) started.splice(at, 1);
      await member.stop(graceMs);
      dropPorts(member.unit, member.member);
    },
    running,
  });
  /** Elements resized during the run: a container that restarts in place is told their members again. */
  const resized = new Set<string>();

  try {
    plan = planOf(stack, units, mode, options.docker !== undefined);
    if (plan.needsDocker) {
      docker = options.docker!;
      await clearLeftovers(docker, stack.name, say);
      await buildRunImages(docker, dir, mode === 'docker' ? units : units.filter((u) => plan!.inDocker.has(u.name)), say);
      check();
      // Containers have no docker restart policy: the caretaker restarts them, by their unit's policy.
      caretaker = await startRunCaretaker(docker, stack.name, (line) => {
        const label = line.container.slice(stack.name.length + 1);
        const unit = unitLines.get(line.container);
        if (unit) unit.tell(line.text);
        else say(`${label}: ${line.text}`);
        if (unit && line.restartedAfter !== undefined) {
          unit.container.follow(line.restartedAfter).catch((err: Error) => say(`${label}: following its output again failed: ${err.message}`));
          // It restarted with the wiring it first had: tell it the members of the shards resized since.
          if (resized.size > 0 && started.includes(unit.member) && !isStopping()) void retellProducer(resizeHost(), unit.member, resized);
        }
        if (line.failed !== undefined) say(`${label} failed: ${line.failed}; it stays stopped until the next run, the rest of ${stack.name} keeps running`);
      }, say);
    }
    check();
    routes = await LocalRoutes.start(options.port);

    for (const unit of units) for (let m = 0; m < unit.scale; m++) await pickPorts(unit, m);
    const base = mode === 'docker' ? runContainerPeers(stack, units) : loopbackPeers(units, loopback, learned);
    // Every wired member binds a control socket (the runner reads its counters and tells it new
    // peers there), answering only the run's own control secret (in its env, never an argument).
    peers = {
      ...base,
      members: (name) => sizes.get(name) ?? base.members(name),
      control: (name, m) => {
        if (!isWired(stack, name)) return undefined;
        if (mode === 'docker') return `tcp://0.0.0.0:${CONTROL_PORT}`;
        const p = loopback.get(loopbackKey(name, m, '$control'));
        return p === undefined ? undefined : `tcp://127.0.0.1:${p}`;
      },
      controlKey,
    };

    for (const unit of units) {
      for (let member = 0; member < unit.scale; member++) {
        check();
        started.push(await startMember(unit, member, peers));
      }
    }
  } catch (err) {
    await stopAll(0);
    throw err;
  }

  if (options.autoscale !== false) {
    autoscaler = startRunAutoscaler({
      spec: stack, key: controlKey, say,
      elementMembers: () => started.filter((s) => unitOf.get(s.unit)?.kind === 'element'),
      sizes: () => Object.fromEntries(sizes),
      stopping: isStopping,
      resize: async (element, from, to) => {
        if (isStopping()) return;
        resized.add(element);
        const began = Date.now();
        const done = await resizeElement(resizeHost(), element, from, to);
        const took = ((Date.now() - began) / 1000).toFixed(1);
        const what = [
          done.started.length > 0 ? `started ${done.started.join(', ')}` : '',
          done.stopped.length > 0 ? `stopped ${done.stopped.join(', ')}` : '',
          done.reshard ? `re-sharded: ${done.reshard.held} producer port${done.reshard.held === 1 ? '' : 's'} held, ${done.reshard.shed} batch${done.reshard.shed === 1 ? '' : 'es'} shed back, ` +
            `${done.reshard.drained ? 'drained' : 'not drained'} in ${Math.round(done.reshard.waitedMs)} ms` : 'producers told',
        ].filter((x) => x !== '');
        say(`autoscale: ${element} runs ${sizes.get(element)} (${what.join('; ')}; in ${took} s)`);
        if (done.reshard && done.reshard.unsupported.length > 0) say(`autoscale: ${done.reshard.unsupported.join(', ')} cannot take part in a re-shard (an older runtime): rewired without the barrier`);
        if (done.untold.length > 0) say(`autoscale: could not tell ${done.untold.join(', ')} the new members; they learn them when they restart`);
      },
    }, options.autoscale ?? {});
  }

  const domains = units.filter((u) => u.kind === 'web').flatMap((u) => u.domains);
  const { urls, curls } = urlsOf(domains, routes!.port);
  let stopping: Promise<void> | undefined;
  return {
    stack: stack.name,
    mode,
    routerPort: routes!.port,
    urls,
    curls,
    controlKey,
    sizes: () => Object.fromEntries(sizes),
    controls: async () => {
      const out: Record<string, string> = {};
      for (const s of started) {
        const c = await s.control?.();
        if (c !== undefined) out[s.label] = c;
      }
      return out;
    },
    stop: (graceMs = 10_000) => (stopping ??= stopAll(graceMs)),
  };
}

/** What runs where, checked before anything starts: every problem at once. */
function planOf(stack: StackSpec, units: DesiredUnit[], mode: RunMode, hasDocker: boolean): { needsDocker: boolean; inDocker: Set<string> } {
  if (mode === 'docker') {
    if (!hasDocker) throw new CannotRunError('no docker engine answers here; run with --processes, or start dockerd (npm run setup does)');
    return { needsDocker: true, inDocker: new Set(units.map((u) => u.name)) };
  }
  const inDocker = new Set<string>();
  const problems: string[] = [];
  for (const unit of units) {
    if (unit.kind === 'element' || unit.command) continue;
    if (unit.kind === 'service' && hasDocker) inDocker.add(unit.name); // a service is reached by its address alone
    else if (unit.kind === 'service') problems.push(`service '${unit.name}' has no 'command' and no docker engine answers to run its image; give it a command (run in its build folder) or start dockerd`);
    else problems.push(`node '${unit.name}' has no 'command'; --processes runs a node's command in its build folder (e.g. command: [node, server.js]); add one, or run without --processes`);
  }
  if (problems.length > 0) throw new CannotRunError(`${stack.name} cannot run as processes:\n  ${problems.join('\n  ')}`);
  return { needsDocker: inDocker.size > 0, inDocker };
}

/**
 * The program of a unit run as a process: an element on the runtime, a node's own command
 * in its build folder. Node code may import quarry/runtime: `node` gets the import options
 * as arguments, anything else (a shell, a script) passes them on in NODE_OPTIONS.
 */
function commandOf(dir: string, unit: DesiredUnit, folder: string): { command: string; args: string[]; cwd: string; env: Record<string, string> } {
  const imports = runtimeImportOptions(folder);
  if (unit.kind === 'element') {
    const classFolder = join(dir, unit.build!.folder);
    const code = unit.build?.main !== undefined ? join(classFolder, unit.build.main) : classFolder;
    return { command: process.execPath, args: [...imports, runtimeMain(), code], cwd: classFolder, env: {} };
  }
  const [command, ...args] = unit.command!;
  const cwd = unit.build !== undefined ? join(dir, unit.build.folder) : dir;
  if (command === 'node') return { command: process.execPath, args: [...imports, ...args], cwd, env: {} };
  return { command: command!, args, cwd, env: { NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...imports].join(' ').trim() } };
}

function readinessOf(unit: DesiredUnit, port: number | undefined): Readiness {
  if (unit.kind === 'element') return { kind: 'ready-line' };
  if (unit.kind === 'web' && port !== undefined) return unit.health ? { kind: 'http', url: `http://127.0.0.1:${port}${unit.health}` } : { kind: 'tcp', port };
  if (unit.kind === 'service' && port !== undefined) return { kind: 'tcp', port };
  return { kind: 'settle', ms: 1000 };
}

function definedOnly<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
