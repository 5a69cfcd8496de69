import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import { QuarryError } from '../../errors/index.js';
import { terminalSafe } from '../../launcher/index.js';
import { fingerprint, isAuthorized, readAuthorizedKeys } from '../keys/index.js';
import { parseGitCommand } from './git-command.js';
import type { HomeLayout } from '../../home/index.js';
import type { HookServer } from './hook-server.js';
import { LoginGate, type Login } from './login-gate.js';
import { ensureRepo } from './repo.js';
import {
  DEFAULT_MAX_PUSH_SIZE, DEFAULT_PUSH_IDLE_TIMEOUT_MS, DEFAULT_PUSH_LOCK_WAIT_MS, DEFAULT_SSH_AUTH_TIMEOUT_MS,
  DEFAULT_SSH_MAX_UNAUTHENTICATED, DEFAULT_SSH_MAX_UNAUTHENTICATED_PER_ADDRESS, formatDuration, formatSize,
} from '../config.js';
import { LockWaitTimeout } from '../errors.js';
import { StackLocks } from '../stack-lock.js';
import { stackFromPath } from '../stack-name.js';

/**
 * The one user name pushes log in as: `ssh://quarry@HOST:PORT/STACK`. Who pushes is told by
 * the key, not the name (as with Dokku's `dokku@` and Heroku's `git@`).
 */
export const GIT_USER = 'quarry';

export interface SshEndpointOptions {
  home: HomeLayout;
  hostKey: string;
  hooks: HookServer;
  log: (line: string) => void;
  /** The largest pack a push may send, in bytes (git's `receive.maxInputSize`); default 500 MB. */
  maxPushSize?: number;
  /** How long (ms) a connection has from its accept to its login; default 60 s. */
  sshAuthTimeout?: number;
  /** Connections not logged in yet, in all; default 100. */
  sshMaxUnauthenticated?: number;
  /** Connections not logged in yet from one address (an IPv6 client: its /64); default 10. */
  sshMaxUnauthenticatedPerAddress?: number;
  /** How long (ms) a push's receive-pack may wait on a pusher that sends (or takes) nothing; default 5 min. */
  pushIdleTimeout?: number;
  /** How long (ms) a push waits for its stack's lock before it gives up; default 10 min. */
  pushLockWait?: number;
}

/** Who pushes: told to a push that waits for this one, and in HQ's log. */
interface Pusher {
  ip: string;
  user: string;
  keyPrint: string;
  /** The key's comment in authorized_keys (`alice@laptop`), made safe for a terminal; may be empty. */
  keyName: string;
}

type Channel = ssh2.ServerChannel;

/**
 * HQ's git endpoint: an SSH server (ssh2) that lets authorised keys run `git-receive-pack`
 * and `git-upload-pack` on stacks' repositories, and nothing else. Keys are read from
 * `keys/authorized_keys` on every login, so `quarry keys add` takes effect at once.
 *
 * Every door has a lock and a timer (docs/hq.md, "Limits"): connections that have not logged
 * in are capped in all and per address and ended after `sshAuthTimeout` (`LoginGate`, which
 * sees each TCP connection before ssh2 does); a push's receive-pack that waits on a silent
 * pusher is ended after `pushIdleTimeout`; a push that waits for its stack's lock gives up
 * after `pushLockWait`, naming the push that holds it.
 */
export class GitSshServer {
  private readonly server: ssh2.Server;
  /** The listening socket: its connections pass the gate, then go to ssh2 (`injectSocket`). */
  private readonly listener: Server;
  private readonly gate: LoginGate;
  /** Connections let in that ssh2 has not yet named (by remote address and port). */
  private readonly logins = new Map<string, Login>();
  private readonly clients = new Set<ssh2.Connection>();
  private readonly children = new Set<ChildProcess>();
  private readonly locks = new StackLocks();
  private closing = false;

  constructor(private readonly options: SshEndpointOptions) {
    this.server = new ssh2.Server({ hostKeys: [options.hostKey], ident: 'quarry' }, (client, info) => this.connection(client, info.ip, info.port));
    this.server.on('error', (err: Error) => options.log(`ssh: ${err.message}`));
    this.gate = new LoginGate({
      authTimeoutMs: options.sshAuthTimeout ?? DEFAULT_SSH_AUTH_TIMEOUT_MS,
      maxUnauthenticated: options.sshMaxUnauthenticated ?? DEFAULT_SSH_MAX_UNAUTHENTICATED,
      maxUnauthenticatedPerAddress: options.sshMaxUnauthenticatedPerAddress ?? DEFAULT_SSH_MAX_UNAUTHENTICATED_PER_ADDRESS,
    }, options.log);
    this.listener = createServer((socket) => this.accept(socket));
    this.listener.on('error', (err: Error) => options.log(`ssh: ${err.message}`));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        resolve((this.listener.address() as AddressInfo).port);
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    for (const child of this.children) child.kill('SIGTERM');
    for (const client of this.clients) client.end();
    this.gate.closeAll();
    await closed;
  }

  /** A TCP connection: counted and timed by the gate until it logs in, or refused at once. */
  private accept(socket: Socket): void {
    if (this.closing) return void socket.destroy();
    const login = this.gate.admit(socket);
    if (!login) return;
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    this.logins.set(key, login);
    socket.once('close', () => { if (this.logins.get(key) === login) this.logins.delete(key); });
    this.server.injectSocket(socket);
  }

  private connection(client: ssh2.Connection, ip: string, port: number): void {
    const login = this.logins.get(`${ip}|${port}`);
    this.clients.add(client);
    client.on('close', () => this.clients.delete(client));
    client.on('error', (err: Error) => this.options.log(`ssh ${ip}: ${err.message}`));
    let user = '';
    let keyPrint = '';
    let keyName = '';

    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const known = isAuthorized(readAuthorizedKeys(this.options.home.authorizedKeys), ctx.key);
      if (!known) return ctx.reject(['publickey']);
      if (ctx.signature) {
        // The client proves it holds the private key: its signature over the session.
        if (!ctx.blob || known.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
        user = ctx.username;
        keyPrint = fingerprint(known.blob);
        keyName = terminalSafe(known.comment).replace(/\s+/g, ' ').trim().slice(0, 80);
      }
      ctx.accept();
    });

    client.on('ready', () => {
      login?.authenticated();
      this.options.log(`ssh ${ip}: ${user} logged in with key ${keyPrint}`);
      client.on('session', (accept) => {
        const session = accept();
        let gitProtocol: string | undefined;
        session.on('env', (acceptEnv, rejectEnv, env) => {
          // git asks for protocol v2 this way; nothing else from the client's env is taken.
          if (env.key === 'GIT_PROTOCOL' && /^[A-Za-z0-9=:.]{1,64}$/.test(env.val)) {
            gitProtocol = env.val;
            acceptEnv?.();
          } else {
            rejectEnv?.();
          }
        });
        session.on('pty', (_accept, rejectPty) => rejectPty?.());
        session.on('shell', (acceptShell) => refuse(acceptShell(),
          `quarry: you are authorised (key ${keyPrint}), but there is no shell here.\n` +
          `Push a stack with: git push ssh://${GIT_USER}@HOST:PORT/STACK main`));
        session.on('exec', (acceptExec, _reject, exec) => {
          const channel = acceptExec();
          this.exec(channel, exec.command, { ip, user, keyPrint, keyName }, gitProtocol).catch((err: unknown) => {
            this.options.log(`ssh ${ip}: ${(err as Error)?.stack ?? String(err)}`);
            refuse(channel, 'quarry: internal error; see HQ\'s log');
          });
        });
        session.on('subsystem', (_accept, rejectSub) => rejectSub());
        session.on('sftp', (_accept, rejectSftp) => rejectSftp());
      });
      client.on('tcpip', (_accept, rejectTcp) => rejectTcp());
      client.on('openssh.streamlocal', (_accept, rejectLocal) => rejectLocal());
      client.on('request', (_accept, rejectRequest) => rejectRequest?.());
    });
  }

  private async exec(channel: Channel, command: string, pusher: Pusher, gitProtocol: string | undefined): Promise<void> {
    const { user, keyPrint } = pusher;
    let service: string;
    let stack: string;
    try {
      if (user !== GIT_USER) {
        throw new QuarryError(`quarry: log in as '${GIT_USER}' (ssh://${GIT_USER}@HOST:PORT/STACK), not as '${user.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}'`);
      }
      const git = parseGitCommand(command);
      service = git.service;
      stack = stackFromPath(git.path);
    } catch (err) {
      if (err instanceof QuarryError) return refuse(channel, err.message.startsWith('quarry:') ? err.message : `quarry: ${err.message}`);
      throw err;
    }
    const { home, hooks, log } = this.options;

    if (service === 'git-upload-pack') {
      const repo = home.repo(stack);
      if (!existsSync(repo)) return refuse(channel, `quarry: there is no stack '${stack}' (nothing was pushed to it yet)`);
      log(`fetch ${stack} by ${keyPrint}`);
      return this.runGit(channel, ['upload-pack', repo], { GIT_PROTOCOL: gitProtocol });
    }

    let open = true;
    const left = new AbortController();
    channel.on('close', () => {
      open = false;
      left.abort();
    });
    const lockWait = this.options.pushLockWait ?? DEFAULT_PUSH_LOCK_WAIT_MS;
    const who = pushedBy(pusher);
    let release: () => void;
    try {
      release = await this.locks.acquire(stack, {
        holder: `the push of ${stack} by ${who}`,
        timeoutMs: lockWait,
        signal: left.signal,
        waiting: (holder) => {
          log(`push ${stack} by ${keyPrint}: waits for ${holder.description}`);
          channel.stderr.write(`quarry: ${holder.description} is running (since ${clockTime(holder.since)}); ` +
            `this push waits for it to finish, at most ${formatDuration(lockWait)} (pushLockWait)\n`);
        },
      });
    } catch (err) {
      // The pusher went away while it waited: it has left the queue; nothing to say to anyone.
      if (left.signal.aborted) return;
      if (!(err instanceof LockWaitTimeout)) throw err;
      log(`push ${stack} by ${keyPrint}: ${err.message}`);
      return refuse(channel, `quarry: this push ${err.message}; push again once that has finished, ` +
        'or raise "pushLockWait" in HQ\'s config (docs/hq.md, "Limits")');
    }
    try {
      if (!open) return;
      const repo = await ensureRepo(home, stack, this.options.maxPushSize);
      const { token, forget, called, answered } = hooks.register({ stack, repo });
      log(`push ${stack} by ${keyPrint}`);
      try {
        await this.runGit(channel, ['receive-pack', repo], {
          GIT_PROTOCOL: gitProtocol, QUARRY_HOOK_SOCKET: hooks.socketPath, QUARRY_PUSH_TOKEN: token,
        }, { stack, repo, by: keyPrint, called, answered });
      } finally {
        forget();
      }
    } finally {
      release();
    }
  }

  /**
   * Runs a git service with the channel as its stdin, stdout and stderr; resolves when it exits.
   * A fetch whose client goes away is ended. A push (`push`) is not: see `carryOn`. A push
   * whose pusher stays silent is ended: see `watchIdle`.
   */
  private runGit(channel: Channel, args: string[], extraEnv: Record<string, string | undefined>, push?: PushRun): Promise<void> {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: this.options.home.root, LANG: 'C.UTF-8' };
    for (const [key, value] of Object.entries(extraEnv)) if (value !== undefined) env[key] = value;
    const child = spawn('git', args, { env, cwd: this.options.home.root, stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.stdin.on('error', () => undefined);
    channel.pipe(child.stdin);
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    // git refuses a pack over receive.maxInputSize before any hook runs; its words come in the
    // protocol's side band, so they are watched for here to add which setting that is.
    let tooBig = false;
    let seen = '';
    if (push) {
      child.stdout.on('data', (chunk: Buffer) => {
        if (tooBig) return;
        seen = (seen + chunk.toString('latin1')).slice(-200);
        tooBig = seen.includes('pack exceeds maximum allowed size');
      });
    }
    const idle = push && this.watchIdle(channel, child, push);
    let open = true;
    let left: (() => void) | undefined;
    const gone = () => {
      open = false;
      idle?.stop();
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (push && !this.closing) left = this.carryOn(channel, child, push);
      else child.kill('SIGTERM');
    };
    channel.on('close', gone);
    return new Promise((resolve) => {
      child.on('error', (err) => {
        if (open) channel.stderr.write(`quarry: could not run git: ${err.message}\n`);
        else this.options.log(`quarry: could not run git: ${err.message}`);
      });
      child.on('close', (code, signal) => {
        this.children.delete(child);
        channel.off('close', gone);
        idle?.stop();
        left?.();
        // A pusher that reads nothing either would keep the channel (its end and exit status are
        // queued behind what it did not read): it is closed regardless after a moment.
        if (open && idle?.ended()) setTimeout(() => channel.close(), IDLE_CLOSE_GRACE_MS).unref();
        if (open) {
          if (tooBig) {
            const limit = formatSize(this.options.maxPushSize ?? DEFAULT_MAX_PUSH_SIZE);
            channel.stderr.write(`quarry: the push is bigger than maxPushSize (${limit}) in HQ's config; ` +
              'keep large files out of the repository, or raise "maxPushSize" (docs/hq.md, "Limits")\n');
          }
          channel.exit(code ?? 1);
          channel.end();
          resolve();
        } else if (push && left) {
          void this.reportLeftPush(push, code, signal).finally(resolve);
        } else {
          resolve();
        }
      });
    });
  }

  /**
   * Ends a push whose receive-pack waits on its pusher for `pushIdleTimeout`, in either of the
   * two spells in which git waits on it:
   *
   * - before the pusher's input is whole: no byte either way for that long while git waits for
   *   the ref updates and the pack. A pusher that sends nothing would hold the stack's lock for
   *   ever. The spell ends at the pusher's end of input (git's client sends it after the pack)
   *   or when the hook calls, whichever comes first;
   * - after the hook's verdict: git has output for the pusher (its report, the deploy's last
   *   lines) that the pusher has taken none of for that long. A pusher that reads nothing would
   *   keep git blocked on a full pipe, and the lock held, for ever.
   *
   * Between the two nothing is timed: git unpacks and checks what it got and runs the hook, and
   * the hook does HQ's own work (checks, builds, deploy), bounded by its own limits
   * (`buildTimeout`); the pusher rightly sends nothing then. An ended receive-pack is stopped
   * (SIGTERM, SIGKILL if it lingers), the pusher told why, and `runGit` then returns as for any
   * exit, so the lock is let go and the next push proceeds.
   */
  private watchIdle(channel: Channel, child: ChildProcess, push: PushRun): { stop(): void; ended(): boolean } {
    const { log } = this.options;
    const idleMs = this.options.pushIdleTimeout ?? DEFAULT_PUSH_IDLE_TIMEOUT_MS;
    const limit = formatDuration(idleMs);
    let timer: NodeJS.Timeout | undefined;
    let spell: 'input' | 'report' | undefined = 'input';
    let ended = false;
    let stopped = false;
    const running = () => child.exitCode === null && child.signalCode === null;
    // The pusher takes nothing of what git has for it: the channel's buffer is full.
    const stalled = () => channel.writableNeedDrain || channel.stderr.writableNeedDrain;
    const expire = () => {
      timer = undefined;
      if (!spell || !running()) return;
      if (spell === 'report' && !stalled()) return arm(); // git is quiet, not held up by the pusher
      ended = true;
      if (spell === 'report') {
        log(`push ${push.stack} by ${push.by}: the pusher took nothing from git receive-pack for ${limit} after the hook's verdict ` +
          '(pushIdleTimeout); ended (the ref may not have moved: the next push moves it)');
        channel.stderr.write(`quarry: this push took nothing for ${limit} after HQ's verdict; it is ended (pushIdleTimeout in HQ's config)\n`);
      } else {
        log(`push ${push.stack} by ${push.by}: the pusher sent nothing for ${limit} (pushIdleTimeout); git receive-pack ended, the stack's lock let go`);
        channel.stderr.write(`quarry: this push sent nothing for ${limit}; it is ended and nothing was changed ` +
          '(pushIdleTimeout in HQ\'s config, docs/hq.md, "Limits")\n');
      }
      spell = undefined;
      // What git still says is dropped: a pusher that takes nothing would otherwise keep git's
      // output unread, and receive-pack's end (its pipes' close) unseen, so the lock held.
      child.stdout!.unpipe(channel);
      child.stderr!.unpipe(channel.stderr);
      child.stdout!.resume();
      child.stderr!.resume();
      child.kill('SIGTERM');
      const kill = setTimeout(() => { if (running()) child.kill('SIGKILL'); }, KILL_GRACE_MS);
      kill.unref();
      child.once('close', () => clearTimeout(kill));
    };
    const arm = () => { timer = setTimeout(expire, idleMs); };
    const disarm = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
    const inputWhole = () => {
      if (spell !== 'input') return;
      spell = undefined;
      disarm();
    };
    // Any byte either way: from the pusher (the ref updates, the pack) or to it (git's
    // advertisement, index-pack's progress, the report).
    const touch = () => { timer?.refresh(); };
    channel.on('data', touch);
    channel.on('end', inputWhole);
    child.stdout!.on('data', touch);
    child.stderr!.on('data', touch);
    arm();
    void push.called.then(inputWhole);
    void push.answered.then(() => {
      if (ended || stopped || !running()) return;
      spell = 'report';
      arm();
    });
    return {
      stop: () => {
        stopped = true;
        spell = undefined;
        disarm();
        channel.off('data', touch);
        channel.off('end', inputWhole);
        child.stdout!.off('data', touch);
        child.stderr!.off('data', touch);
      },
      ended: () => ended,
    };
  }

  /**
   * A pusher went away while its receive-pack runs. Before the pack has arrived, receive-pack
   * gets end of input and gives up (the hook never runs: nothing changes). Once it has, the
   * push goes on to its end without the pusher, as Heroku's does: the hook's deploy finishes
   * or fails, and receive-pack moves the ref if the hook accepts, so that the ref, the release
   * and what runs agree. What git would have shown the pusher is read and dropped, so that
   * receive-pack (and the hook, which writes through it) never blocks on a pipe nobody reads.
   * Should receive-pack still run long after the hook's verdict, it is ended: the stack's push
   * lock must not be held forever. Returns what to do once receive-pack has exited.
   */
  private carryOn(channel: Channel, child: ChildProcess, push: PushRun): () => void {
    const { log } = this.options;
    log(`push ${push.stack}: the pusher left; the push carries on to its end without it (a pack not yet received is dropped)`);
    channel.unpipe(child.stdin!);
    child.stdin!.end();
    child.stdout!.unpipe(channel);
    child.stderr!.unpipe(channel.stderr);
    child.stdout!.resume();
    child.stderr!.resume();
    let timer: NodeJS.Timeout | undefined;
    let exited = false;
    void push.answered.then(() => {
      if (exited) return;
      timer = setTimeout(() => {
        log(`push ${push.stack}: git receive-pack still runs ${LEFT_PUSH_GRACE_MS / 1000} s after the hook's verdict, with no pusher; ending it`);
        child.kill('SIGTERM');
      }, LEFT_PUSH_GRACE_MS);
      timer.unref();
    });
    return () => {
      exited = true;
      if (timer) clearTimeout(timer);
    };
  }

  /** HQ's log line for a push that ended without its pusher: where the deployed branch is now. */
  private async reportLeftPush(push: PushRun, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    const refs = await new Promise<string>((resolve) => {
      execFile('git', ['--git-dir', push.repo, 'for-each-ref', '--format=%(refname:short) %(objectname:short)', 'refs/heads/main', 'refs/heads/master'],
        (err, stdout) => resolve(err ? `(could not read the refs: ${err.message})` : stdout.trim().split('\n').filter(Boolean).join(', ') || 'no branch yet'));
    });
    this.options.log(`push ${push.stack}: git receive-pack ended ${signal ? `by ${signal}` : `with exit code ${code}`} after the pusher left; ${refs}`);
  }
}

/** A push being received: its stack and repo, who pushes (a key's fingerprint), when its hook called and when it got HQ's verdict. */
interface PushRun {
  stack: string;
  repo: string;
  by: string;
  called: Promise<void>;
  answered: Promise<void>;
}

/** How long a receive-pack ended by SIGTERM has before SIGKILL. */
const KILL_GRACE_MS = 5000;

/** How long the channel of a push ended for idling has to close by itself before it is closed. */
const IDLE_CLOSE_GRACE_MS = 10_000;

/** Who pushes, as others are told: `key alice@laptop (SHA256:…) from 10.0.0.5`. */
function pushedBy(pusher: Pusher): string {
  return `key ${pusher.keyName ? `${pusher.keyName} (${pusher.keyPrint})` : pusher.keyPrint} from ${pusher.ip}`;
}

/** `16:42:03 UTC`. */
function clockTime(at: Date): string {
  return `${at.toISOString().slice(11, 19)} UTC`;
}

/** How long receive-pack may run on after its hook's verdict once the pusher has left: it needs milliseconds. */
const LEFT_PUSH_GRACE_MS = 60_000;

/** Answers a request quarry does not serve: the reason on stderr, exit status 1. */
function refuse(channel: Channel, message: string): void {
  channel.stderr.write(`${message}\n`);
  channel.exit(1);
  channel.end();
}
