import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { QuarryError } from '../../errors/index.js';
import { fingerprint, isAuthorized, readAuthorizedKeys } from '../keys/index.js';
import { parseGitCommand } from './git-command.js';
import type { HomeLayout } from '../../home/index.js';
import type { HookServer } from './hook-server.js';
import { ensureRepo } from './repo.js';
import { DEFAULT_MAX_PUSH_SIZE, formatSize } from '../config.js';
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
}

type Channel = ssh2.ServerChannel;

/**
 * HQ's git endpoint: an SSH server (ssh2) that lets authorised keys run `git-receive-pack`
 * and `git-upload-pack` on stacks' repositories, and nothing else. Keys are read from
 * `keys/authorized_keys` on every login, so `quarry keys add` takes effect at once.
 */
export class GitSshServer {
  private readonly server: ssh2.Server;
  private readonly clients = new Set<ssh2.Connection>();
  private readonly children = new Set<ChildProcess>();
  private readonly locks = new StackLocks();
  private closing = false;

  constructor(private readonly options: SshEndpointOptions) {
    this.server = new ssh2.Server({ hostKeys: [options.hostKey], ident: 'quarry' }, (client, info) => this.connection(client, info.ip));
    this.server.on('error', (err: Error) => options.log(`ssh: ${err.message}`));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const child of this.children) child.kill('SIGTERM');
    for (const client of this.clients) client.end();
    await closed;
  }

  private connection(client: ssh2.Connection, ip: string): void {
    this.clients.add(client);
    client.on('close', () => this.clients.delete(client));
    client.on('error', (err: Error) => this.options.log(`ssh ${ip}: ${err.message}`));
    let user = '';
    let keyPrint = '';

    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const known = isAuthorized(readAuthorizedKeys(this.options.home.authorizedKeys), ctx.key);
      if (!known) return ctx.reject(['publickey']);
      if (ctx.signature) {
        // The client proves it holds the private key: its signature over the session.
        if (!ctx.blob || known.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
        user = ctx.username;
        keyPrint = fingerprint(known.blob);
      }
      ctx.accept();
    });

    client.on('ready', () => {
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
          this.exec(channel, exec.command, user, keyPrint, gitProtocol).catch((err: unknown) => {
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

  private async exec(channel: Channel, command: string, user: string, keyPrint: string, gitProtocol: string | undefined): Promise<void> {
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
    channel.on('close', () => { open = false; });
    const release = await this.locks.acquire(stack, () =>
      channel.stderr.write(`quarry: another push of ${stack} is running; waiting for it to finish\n`));
    try {
      if (!open) return;
      const repo = await ensureRepo(home, stack, this.options.maxPushSize);
      const { token, forget, answered } = hooks.register({ stack, repo });
      log(`push ${stack} by ${keyPrint}`);
      try {
        await this.runGit(channel, ['receive-pack', repo], {
          GIT_PROTOCOL: gitProtocol, QUARRY_HOOK_SOCKET: hooks.socketPath, QUARRY_PUSH_TOKEN: token,
        }, { stack, repo, answered });
      } finally {
        forget();
      }
    } finally {
      release();
    }
  }

  /**
   * Runs a git service with the channel as its stdin, stdout and stderr; resolves when it exits.
   * A fetch whose client goes away is ended. A push (`push`) is not: see `carryOn`.
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
    let open = true;
    let left: (() => void) | undefined;
    const gone = () => {
      open = false;
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
        left?.();
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

/** A push being received: its stack and repo, and when its hook got HQ's verdict. */
interface PushRun {
  stack: string;
  repo: string;
  answered: Promise<void>;
}

/** How long receive-pack may run on after its hook's verdict once the pusher has left: it needs milliseconds. */
const LEFT_PUSH_GRACE_MS = 60_000;

/** Answers a request quarry does not serve: the reason on stderr, exit status 1. */
function refuse(channel: Channel, message: string): void {
  channel.stderr.write(`${message}\n`);
  channel.exit(1);
  channel.end();
}
