import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { StackSpec } from '../compiler/index.js';
import { QuarryError } from '../errors/index.js';
import {
  containerEnv, desiredUnits, inPortNumbers, isWired, loopbackKey, loopbackPeers, runContainerPeers, serviceEnv, type DesiredUnit,
} from '../plan/index.js';
import { buildRunImages, clearLeftovers, startRunCaretaker, sweepStack, UnitContainer } from './docker-mode.js';
import type { Caretaker } from '../launcher/index.js';
import { CannotRunError } from './errors.js';
import { freePort } from '../home/index.js';
import { newControlKey } from '../runtime/index.js';
import { PrefixedOutput } from './output.js';
import { ProcessUnit, type Readiness } from './process-unit.js';
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
  /** Aborted (Ctrl-C) while starting: stop at the next step and remove what was started. */
  signal?: AbortSignal;
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
  /** Stops every unit (web nodes first, services last) and removes containers and network. */
  stop(graceMs?: number): Promise<void>;
}

/** Ctrl-C while a stack was starting: what was started is gone again. */
export class RunAbortedError extends QuarryError {}

interface Started {
  unit: string;
  label: string;
  stop(graceMs: number): Promise<void>;
}

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
 * what was started is stopped again before the error is thrown.
 */
export async function runStack(options: RunOptions): Promise<RunningStack> {
  const { stack, dir, mode, say } = options;
  const units = desiredUnits(stack);
  const output = new PrefixedOutput(options.out, options.color);
  output.reserve(units.flatMap((u) => Array.from({ length: u.scale }, (_, m) => `${u.name}.${m}`)));
  const started: Started[] = [];
  const folder = runFolder();
  const controlKey = newControlKey();
  let routes: LocalRoutes | undefined;
  let docker: Docker | undefined;
  let caretaker: Caretaker | undefined;
  /** The unit line of each container started (`<stack>.<name>.<n>`), for the caretaker's lines. */
  const unitLines = new Map<string, { tell: (line: string) => void; container: UnitContainer }>();
  const check = () => {
    if (options.signal?.aborted) throw new RunAbortedError('stopped while starting; everything started is gone again');
  };

  let stopCalled = false;
  const isStopping = () => stopCalled || options.signal?.aborted === true;
  const stopAll = async (graceMs: number) => {
    stopCalled = true;
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

  try {
    const plan = planOf(stack, units, mode, options.docker !== undefined);
    if (plan.needsDocker) {
      docker = options.docker!;
      await clearLeftovers(docker, stack.name, say);
      await buildRunImages(docker, dir, mode === 'docker' ? units : units.filter((u) => plan.inDocker.has(u.name)), say);
      check();
      // Containers have no docker restart policy: the caretaker restarts them, by their unit's policy.
      caretaker = await startRunCaretaker(docker, stack.name, (line) => {
        const label = line.container.slice(stack.name.length + 1);
        const unit = unitLines.get(line.container);
        if (unit) unit.tell(line.text);
        else say(`${label}: ${line.text}`);
        if (unit && line.restartedAfter !== undefined) {
          unit.container.follow(line.restartedAfter).catch((err: Error) => say(`${label}: following its output again failed: ${err.message}`));
        }
        if (line.failed !== undefined) say(`${label} failed: ${line.failed}; it stays stopped until the next run, the rest of ${stack.name} keeps running`);
      }, say);
    }
    check();
    routes = await LocalRoutes.start(options.port);

    // Processes learn a service's address once it has started (a free port, or a container's
    // published one); containers reach services by name, known up front.
    const learned: Record<string, string> = {};
    // The run's own control secret: its elements get it in their env (never as an argument, never in a label).
    const peers = { ...(mode === 'docker' ? runContainerPeers(stack, units) : loopbackPeers(units, await loopbackPorts(stack, units), learned)), controlKey };

    for (const unit of units) {
      for (let member = 0; member < unit.scale; member++) {
        check();
        const label = `${unit.name}.${member}`;
        const write = output.writer(label, unit.name);
        const tell = (line: string) => output.line(label, `quarry: ${line}`, unit.name);
        const inDocker = mode === 'docker' || plan.inDocker.has(unit.name);
        // Inside a container a unit listens on its own port; a process on a free one.
        const port = !inDocker && unit.port !== undefined ? await freePort() : undefined;
        // A local run gives a service no other service's address (HQ gives every container all of them).
        const env = containerEnv(stack, unit, member, unit.kind === 'service' ? { ...peers, services: {} } : peers, port !== undefined ? { port } : {});
        say(`starting ${label} (${unit.kind}) …`);

        if (inDocker) {
          // A service's port is published for the processes of a --processes run.
          const health = unit.kind === 'web' ? { port: unit.port, path: unit.health } : unit.kind === 'service' ? { port: unit.port } : {};
          const c = await UnitContainer.start(docker!, {
            stack: stack.name, name: unit.name, kind: unit.kind, n: member, image: unit.image, env,
            ...(unit.command && { command: unit.command }),
            ...(unit.port !== undefined && { port: unit.port }),
            memoryMb: unit.memory, digest: unit.digest,
            ...(unit.restart && { restart: unit.restart }),
          }, definedOnly(health), write);
          started.push({ unit: unit.name, label, stop: (g) => c.stop(unit.kind === 'element' ? g : Math.min(g, NODE_CONTAINER_GRACE_MS)) });
          unitLines.set(c.container.name, { tell, container: c });
          if (unit.kind === 'service' && mode === 'processes') Object.assign(learned, serviceEnv(unit.name, '127.0.0.1', c.container.hostPort));
          if (unit.kind === 'web') routes.add(unit.domains, label, `http://127.0.0.1:${c.container.hostPort}`);
          continue;
        }

        const program = commandOf(dir, unit, folder);
        const p = await ProcessUnit.start({
          label, command: program.command, args: program.args, cwd: program.cwd,
          env: { ...(options.env ?? process.env), ...env, ...program.env },
          readiness: readinessOf(unit, port), write, say: tell, stopping: isStopping,
          ...(unit.restart && { restart: unit.restart }),
          onFailed: (reason) => say(`${label} failed: ${reason}; it stays stopped until the next run, the rest of ${stack.name} keeps running`),
        });
        started.push({ unit: unit.name, label, stop: (g) => p.stop(g) });
        if (unit.kind === 'service') Object.assign(learned, serviceEnv(unit.name, '127.0.0.1', port));
        if (unit.kind === 'web') routes.add(unit.domains, label, `http://127.0.0.1:${port}`);
      }
    }
  } catch (err) {
    await stopAll(0);
    throw err;
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

/** Processes on loopback: every in port of every member gets a free port, chosen up front. */
async function loopbackPorts(stack: StackSpec, units: DesiredUnit[]): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  for (const unit of units) {
    if (!isWired(stack, unit.name)) continue;
    for (let m = 0; m < unit.scale; m++) {
      for (const port of Object.keys(inPortNumbers(stack, unit.name))) ports.set(loopbackKey(unit.name, m, port), await freePort());
    }
  }
  return ports;
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
