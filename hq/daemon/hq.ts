import Docker from 'dockerode';
import { HomeLayout } from '../../home/index.js';
import { loadHostKey } from '../keys/index.js';
import { HookServer, receivePush, printPlan, installHookProgram, GitSshServer } from '../push/index.js';
import type { OnRelease } from '../control.js';

export interface HqOptions {
  /** The state folder (see `quarryHome()`). */
  home: string;
  /** The SSH port git pushes to; 0 picks a free one. */
  sshPort: number;
  /** The address to listen on, e.g. `0.0.0.0` or `127.0.0.1`. */
  host: string;
  /** The docker engine images are built on; default: the local one. */
  docker?: Docker;
  /** What happens to a push once compiled and built; default: print the plan. */
  onRelease?: OnRelease;
  /** HQ's own log lines; default: stderr. */
  log?: (line: string) => void;
  /** How long one image build may run, in ms (config `buildTimeout`); default 15 min. */
  buildTimeout?: number;
  /** The memory limit of builds, in bytes (config `buildMemory`); default 2 GB. */
  buildMemory?: number;
  /** The largest pack a push may send, in bytes (config `maxPushSize`); default 500 MB. */
  maxPushSize?: number;
  /** How long a connection has to log in, in ms (config `sshAuthTimeout`); default 60 s. */
  sshAuthTimeout?: number;
  /** Connections not logged in yet, in all (config `sshMaxUnauthenticated`); default 100. */
  sshMaxUnauthenticated?: number;
  /** Connections not logged in yet from one address (config `sshMaxUnauthenticatedPerAddress`); default 10. */
  sshMaxUnauthenticatedPerAddress?: number;
  /** How long a receive-pack may wait on a pusher that sends (or takes) nothing, in ms (config `pushIdleTimeout`); default 5 min. */
  pushIdleTimeout?: number;
  /** How long a push waits for its stack's lock, in ms (config `pushLockWait`); default 10 min. */
  pushLockWait?: number;
}

export interface Hq {
  /** The SSH port it listens on (the one picked, when asked for 0). */
  sshPort: number;
  /** The host key's fingerprint, for pushers to check on their first push. */
  hostKeyFingerprint: string;
  close(): Promise<void>;
}

/**
 * Starts HQ's git-over-SSH push path: the host key (made on first start), the hook socket,
 * and the SSH server. Issue 6's HQ grows from here (HTTP API, state, launches).
 */
export async function startHq(options: HqOptions): Promise<Hq> {
  const home = new HomeLayout(options.home);
  home.ensure(home.root);
  const log = options.log ?? ((line: string) => process.stderr.write(`hq: ${line}\n`));
  const docker = options.docker ?? new Docker();
  const onRelease = options.onRelease ?? printPlan;
  const hostKey = loadHostKey(home);
  installHookProgram(home);

  const hooks = new HookServer(home, (call) => receivePush({
    home, stack: call.push.stack, repo: call.push.repo, updates: call.updates, quarantine: call.quarantine,
    docker, onRelease, progress: call.progress, pusherWaiting: call.hookWaiting,
    limits: {
      ...(options.buildTimeout !== undefined && { buildTimeout: options.buildTimeout }),
      ...(options.buildMemory !== undefined && { buildMemory: options.buildMemory }),
    },
  }));
  await hooks.listen();
  const ssh = new GitSshServer({
    home, hostKey: hostKey.privateKey, hooks, log, ...(options.maxPushSize !== undefined && { maxPushSize: options.maxPushSize }),
    ...(options.sshAuthTimeout !== undefined && { sshAuthTimeout: options.sshAuthTimeout }),
    ...(options.sshMaxUnauthenticated !== undefined && { sshMaxUnauthenticated: options.sshMaxUnauthenticated }),
    ...(options.sshMaxUnauthenticatedPerAddress !== undefined && { sshMaxUnauthenticatedPerAddress: options.sshMaxUnauthenticatedPerAddress }),
    ...(options.pushIdleTimeout !== undefined && { pushIdleTimeout: options.pushIdleTimeout }),
    ...(options.pushLockWait !== undefined && { pushLockWait: options.pushLockWait }),
  });
  let sshPort: number;
  try {
    sshPort = await ssh.listen(options.sshPort, options.host);
  } catch (err) {
    await hooks.close();
    throw err;
  }
  log(`git over SSH on ${options.host}:${sshPort} (host key ${hostKey.fingerprint}); home ${home.root}`);
  return {
    sshPort,
    hostKeyFingerprint: hostKey.fingerprint,
    async close() {
      await ssh.close();
      await hooks.close();
    },
  };
}
