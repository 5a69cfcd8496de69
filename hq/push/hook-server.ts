import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QUARANTINE_VARIABLES } from './checkout.js';
import type { HomeLayout } from '../../home/index.js';
import { progressTo, type Progress } from '../../launcher/index.js';
import type { RefUpdate } from './refs.js';
import { HomeInUseError } from '../errors.js';


/** A push whose receive-pack runs now: what its hook's call is about. */
export interface PendingPush {
  stack: string;
  repo: string;
}

/** What the hook hands over, and a way to tell whether it is still listening. */
export interface HookCall {
  push: PendingPush;
  updates: RefUpdate[];
  quarantine: Record<string, string>;
  progress: Progress;
  hookWaiting(): boolean;
}

const MAX_REQUEST = 1 << 20;

/**
 * The Unix socket through which each push's pre-receive hook calls back into HQ. HQ
 * registers a push with a one-time token before it starts `git-receive-pack` and passes
 * the token in its environment; a call with an unknown or spent token is refused. The
 * socket is private to HQ's user (mode 0600), and the decision is made here, in HQ.
 */
export class HookServer {
  readonly socketPath: string;
  private readonly server: Server;
  private readonly pushes = new Map<string, PendingPush & { called(): void; answered(): void }>();

  constructor(home: HomeLayout, private readonly decide: (call: HookCall) => Promise<number>) {
    this.socketPath = hookSocketPath(home);
    this.server = createServer((socket) => this.serve(socket));
  }

  async listen(): Promise<void> {
    if (await answers(this.socketPath)) {
      throw new HomeInUseError(`another HQ is running with this home (its socket ${this.socketPath} answers); stop it first`);
    }
    rmSync(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.socketPath, 0o600);
  }

  /**
   * A token for one receive-pack run; `forget` once it has exited. `called` resolves once that
   * run's hook has called (git has the whole pack), `answered` once HQ has sent the hook its
   * verdict (never, if the hook is not called).
   */
  register(push: PendingPush): { token: string; forget(): void; called: Promise<void>; answered: Promise<void> } {
    const token = randomBytes(24).toString('hex');
    let call!: () => void;
    let answer!: () => void;
    const called = new Promise<void>((resolve) => { call = resolve; });
    const answered = new Promise<void>((resolve) => { answer = resolve; });
    this.pushes.set(token, { ...push, called: call, answered: answer });
    return { token, forget: () => this.pushes.delete(token), called, answered };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  private serve(socket: Socket): void {
    let buffer = '';
    let open = true;
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('close', () => { open = false; });
    const send = (message: object) => { if (open) socket.write(`${JSON.stringify(message)}\n`); };
    const onData = (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST) return finish(1, 'quarry: the hook sent too much\n');
      const at = buffer.indexOf('\n');
      if (at < 0) return;
      socket.off('data', onData);
      const request = parseRequest(buffer.slice(0, at));
      const push = request && this.pushes.get(request.token);
      if (!request || !push) return finish(1, 'quarry: this push is not one HQ started; rejected\n');
      this.pushes.delete(request.token);
      const { called, answered, ...pending } = push;
      called();
      const progress = progressTo((out) => send({ out }), (err) => send({ err }));
      this.decide({ push: pending, updates: request.updates, quarantine: request.git, progress, hookWaiting: () => open })
        .then((code) => finish(code), (err: unknown) => finish(1, `quarry: internal error: ${(err as Error)?.message ?? String(err)}\n`))
        .finally(answered);
    };
    const finish = (code: number, err?: string) => {
      if (err) send({ err });
      send({ exit: code });
      socket.end();
    };
    socket.on('data', onData);
  }
}

function parseRequest(line: string): { token: string; updates: RefUpdate[]; git: Record<string, string> } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const v = value as { token?: unknown; updates?: unknown; git?: unknown };
  if (typeof v.token !== 'string' || !Array.isArray(v.updates)) return undefined;
  const updates: RefUpdate[] = [];
  for (const u of v.updates as { oldSha?: unknown; newSha?: unknown; ref?: unknown }[]) {
    if (typeof u?.oldSha !== 'string' || typeof u.newSha !== 'string' || typeof u.ref !== 'string') return undefined;
    updates.push({ oldSha: u.oldSha, newSha: u.newSha, ref: u.ref });
  }
  const git: Record<string, string> = {};
  const given = (typeof v.git === 'object' && v.git !== null ? v.git : {}) as Record<string, unknown>;
  for (const name of QUARANTINE_VARIABLES) {
    if (typeof given[name] === 'string') git[name] = given[name];
  }
  // `git push -o KEY=VALUE`: the count and each option, as git gave them to the hook.
  const count = Number(given.GIT_PUSH_OPTION_COUNT);
  if (Number.isInteger(count) && count > 0 && count <= 64) {
    git.GIT_PUSH_OPTION_COUNT = String(count);
    for (let i = 0; i < count; i++) {
      const option = given[`GIT_PUSH_OPTION_${i}`];
      if (typeof option === 'string') git[`GIT_PUSH_OPTION_${i}`] = option;
    }
  }
  return { token: v.token, updates, git };
}

/** `<home>/run/hook.sock`, or a short path in the temp folder when that is too long for a socket. */
function hookSocketPath(home: HomeLayout): string {
  const path = join(home.runDir, 'hook.sock');
  home.ensure(home.runDir);
  if (Buffer.byteLength(path) < 100) return path;
  return join(tmpdir(), `quarry-hook-${createHash('sha256').update(home.root).digest('hex').slice(0, 16)}.sock`);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
