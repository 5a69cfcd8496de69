import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { PRIVATE_FOLDER } from './durable-write.js';

/**
 * Where HQ keeps its state: `QUARRY_HOME`, else `/home/quarry` when running as root (a
 * server), else `~/.quarry` (a developer's machine).
 */
export function quarryHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.QUARRY_HOME) return resolve(env.QUARRY_HOME);
  if (process.getuid?.() === 0) return '/home/quarry';
  return join(homedir(), '.quarry');
}

/** The paths of quarry's state under one home (HQ's, and local runs'). Only this module spells them out. */
export class HomeLayout {
  constructor(readonly root: string) {}

  get keysDir(): string { return join(this.root, 'keys'); }
  get authorizedKeys(): string { return join(this.keysDir, 'authorized_keys'); }
  /** The secret key of the units' digests (the `quarry.digest` label), 0600: HQ's own. */
  get digestKey(): string { return join(this.keysDir, 'digest.key'); }
  get hostKey(): string { return join(this.root, 'ssh_host_ed25519_key'); }
  get stacksDir(): string { return join(this.root, 'stacks'); }
  /** Sockets and other things that only matter while HQ runs. */
  get runDir(): string { return join(this.root, 'run'); }
  /** HQ's API token (mode 0600). */
  get token(): string { return join(this.root, 'token'); }
  /** Where a running HQ tells local commands its ports (removed when it stops). */
  get hqInfo(): string { return join(this.root, 'hq.json'); }
  /** Held while an HQ serves this home. */
  get lockFile(): string { return join(this.runDir, 'hq.lock'); }
  /** The data of HQ's own etcd. */
  get etcdDir(): string { return join(this.root, 'etcd'); }
  /** The pid of HQ's own etcd while it runs (to end one left over by an HQ that was killed). */
  get etcdPidFile(): string { return join(this.runDir, 'etcd.pid'); }
  /** The program every stack's pre-receive hook runs (one copy, shared by all repos). */
  get hookProgram(): string { return join(this.root, 'hooks', 'pre-receive.cjs'); }

  /** HQ's tasks, one JSON file each, rewritten with every message. */
  get tasksDir(): string { return join(this.root, 'tasks'); }
  /** The grid's servers: `servers/<id>/settings.json`, the provider's record of each. */
  get serversDir(): string { return join(this.root, 'servers'); }
  get gridDir(): string { return join(this.root, 'grid'); }
  /** slicegrid's allocation of the grid. */
  get gridFile(): string { return join(this.gridDir, 'grid.json'); }

  stackDir(stack: string): string { return join(this.stacksDir, stack); }
  /** The releases of a stack: `build/vN/{release,plan}.json`. */
  stackBuild(stack: string): string { return join(this.stackDir(stack), 'build'); }
  /** A stack's env set with `quarry env`: one file per key. */
  stackEnv(stack: string): string { return join(this.stackDir(stack), 'env'); }
  /** What a `quarry run` of a stack on this machine tells other commands (while it runs). */
  runStack(stack: string): string { return join(this.runDir, 'stacks', `${stack}.json`); }
  /** Where a detached `quarry start` run's output goes. */
  runLog(stack: string): string { return join(this.runDir, 'stacks', `${stack}.log`); }
  repo(stack: string): string { return join(this.stackDir(stack), 'repo.git'); }
  /** The code of the last accepted push: a symbolic link to one of `srcVersions`. */
  src(stack: string): string { return join(this.stackDir(stack), 'src'); }
  /** Checked-out pushes: the one `src` points at, and pushes being checked. */
  srcVersions(stack: string): string { return join(this.stackDir(stack), '.src'); }

  /**
   * Makes a folder of the home (and its missing parents), private to HQ's user (0700) from
   * the moment it is made; one that exists is left as it is (`makeHomePrivate` tightens an
   * old home at HQ's start).
   */
  ensure(dir: string): string {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_FOLDER });
    return dir;
  }
}
