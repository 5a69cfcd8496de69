import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { DEFAULT_RESTART, restartDecision, type RestartPolicy } from '../plan/index.js';
import { UnitFailedError } from './errors.js';

/** How a unit shows that it is up. */
export type Readiness =
  | { kind: 'ready-line' } // an element: the runtime's `{"quarry":"ready"}` line on stdout
  | { kind: 'http'; url: string } // a web node: GET answers 2xx
  | { kind: 'tcp'; port: number } // a service: accepts connections
  | { kind: 'settle'; ms: number }; // a worker: still running after a moment

export interface ProcessUnitSpec {
  /** `name.member`, as its output is prefixed. */
  label: string;
  command: string;
  args: string[];
  cwd: string;
  /**
   * Its env; a function is asked again at each restart (a local run's wiring names the members
   * its targets have now, which autoscale may have changed since the process first started).
   */
  env: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv);
  readiness: Readiness;
  /** Where its output goes, chunk by chunk (undefined: the stream ended). */
  write: (chunk?: string) => void;
  /** Called with a line about the unit's life (exits, restarts). */
  say: (line: string) => void;
  timeoutMs?: number;
  /** True once the whole run is stopping: an exit then is no crash (Ctrl-C reaches children too). */
  stopping?: () => boolean;
  /** How a crash after it was up is restarted (the unit's `restart:`); default DEFAULT_RESTART. */
  restart?: RestartPolicy;
  /** Called when it crashed too often and was given up: it stays stopped, the run goes on. */
  onFailed?: (reason: string) => void;
}

/** Where a process unit is in its life once it was up. */
export type ProcessState = 'running' | 'backoff' | 'failed';

/**
 * One child process of a stack run: started, watched until ready, restarted after a crash as
 * its unit's restart policy says (`restartDecision`: the first restart at once, then with
 * back-off, and given up as failed after too many within the policy's window; elements are
 * made to survive a restart: their producers resend what was not acknowledged), and stopped
 * with SIGTERM, then SIGKILL after a grace period.
 */
export class ProcessUnit {
  private child: ChildProcess | undefined;
  private stopping = false;
  /** Ready once: from then on an exit is a crash to restart after; before, a failure to start. */
  private up = false;
  private readonly tail: string[] = [];
  private exited: Promise<number | null> = Promise.resolve(null);
  private restartTimer: NodeJS.Timeout | undefined;
  /** When each restart was made (ms), for the policy's window. */
  private readonly restartTimes: number[] = [];
  private lifeState: ProcessState = 'running';

  private constructor(private readonly spec: ProcessUnitSpec) {}

  static async start(spec: ProcessUnitSpec): Promise<ProcessUnit> {
    const unit = new ProcessUnit(spec);
    let readyLine: (() => void) | undefined;
    const sawReady = new Promise<void>((resolve) => { readyLine = resolve; });
    unit.spawn(() => readyLine?.());
    try {
      await unit.waitReady(sawReady);
      unit.up = true;
    } catch (err) {
      await unit.stop(0);
      throw err;
    }
    return unit;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Running (or never seen die), waiting to restart, or given up. */
  get state(): ProcessState {
    return this.lifeState;
  }

  /** Restarts made since it started. */
  get restarts(): number {
    return this.restartTimes.length;
  }

  private spawn(onReadyLine: () => void): void {
    const { spec } = this;
    const env = typeof spec.env === 'function' ? spec.env() : spec.env;
    const child = spawn(spec.command, spec.args, { cwd: spec.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (line: string) => {
      this.tail.push(line);
      if (this.tail.length > 20) this.tail.shift();
    };
    let held = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      held += chunk;
      let at: number;
      while ((at = held.indexOf('\n')) >= 0) {
        const line = held.slice(0, at);
        held = held.slice(at + 1);
        if (line.startsWith('{"quarry":"ready"')) {
          onReadyLine();
          spec.write('ready\n');
          continue;
        }
        if (line.startsWith('{"quarry":"stats"')) continue;
        keep(line);
        spec.write(`${line}\n`);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line) keep(line);
      spec.write(chunk);
    });
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        keep(`${spec.command}: ${err.message}`);
        spec.say(`cannot start ${spec.command}: ${err.message}`);
        resolve(null);
      });
      child.once('exit', (code, signal) => {
        if (held) spec.write(`${held}\n`);
        held = '';
        if (this.up && !this.stopping && !spec.stopping?.()) this.crashed(signal ?? `code ${code}`);
        resolve(code);
      });
    });
  }

  /** It died after it was up: restart it as the policy says, or give it up. */
  private crashed(how: string): void {
    const { spec } = this;
    const policy = spec.restart ?? DEFAULT_RESTART;
    const now = Date.now();
    const decision = restartDecision(this.restartTimes, policy, now);
    if (decision.action === 'fail') {
      this.lifeState = 'failed';
      spec.say(`exited (${how}); failed: ${decision.reason}; it stays stopped, the rest of the stack keeps running`);
      spec.onFailed?.(decision.reason);
      return;
    }
    this.lifeState = 'backoff';
    const which = `restart ${decision.attempt} of ${policy.attempts} within ${window(policy.intervalMs)}`;
    spec.say(`exited (${how}); ${decision.delayMs === 0 ? `restarting now (${which})` : `restarting in ${seconds(decision.delayMs)} (${which})`}`);
    const restart = () => {
      this.restartTimer = undefined;
      if (this.stopping || spec.stopping?.()) return;
      this.restartTimes.push(Date.now());
      this.lifeState = 'running';
      this.spawn(() => undefined);
    };
    if (decision.delayMs === 0) restart();
    else this.restartTimer = setTimeout(restart, decision.delayMs);
  }

  private async waitReady(sawReady: Promise<void>): Promise<void> {
    const { spec } = this;
    const deadline = Date.now() + (spec.timeoutMs ?? 60_000);
    const started = Date.now();
    let gone = false;
    void this.exited.then(() => { gone = true; });
    let readyLine = false;
    void sawReady.then(() => { readyLine = true; });
    const fail = (reason: string) => new UnitFailedError(spec.label, reason, [...this.tail]);
    for (;;) {
      if (gone) {
        const code = this.child?.exitCode;
        throw fail(code === null || code === undefined ? 'it could not be started' : `it exited with code ${code}`);
      }
      const r = spec.readiness;
      if (r.kind === 'ready-line' && readyLine) return;
      if (r.kind === 'settle' && Date.now() - started >= r.ms) return;
      if (r.kind === 'tcp' && (await accepts(r.port))) return;
      if (r.kind === 'http') {
        const status = await httpStatus(r.url);
        if (status >= 200 && status < 300) return;
      }
      if (Date.now() > deadline) {
        const what = r.kind === 'http' ? `GET ${r.url} did not answer 2xx` : r.kind === 'tcp' ? `nothing accepted connections on port ${r.port}` : 'it did not say it was ready';
        throw fail(`${what} within ${Math.round((spec.timeoutMs ?? 60_000) / 1000)} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.kill(graceMs === 0 ? 'SIGKILL' : 'SIGTERM');
    await this.exited;
    clearTimeout(killer);
    this.spec.write();
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function window(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return seconds(ms);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}
