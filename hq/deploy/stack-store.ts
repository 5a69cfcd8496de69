import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWrite, type HomeLayout } from '../../home/index.js';
import { newControlKey } from '../../runtime/index.js';
import { ReleaseNotFoundError, StackNotFoundError } from '../errors.js';
import { isStackName } from '../stack-name.js';
import type { ReleaseRecord } from './records.js';

/**
 * A stack's records under the home: its releases (`build/v<N>/release.json` and its
 * `plan.json`), its env, one file per key (`env/<KEY>`), and its control secret
 * (`control.key`). Every write is atomic, and every file 0600 in 0700 folders from the
 * moment it is made: releases and plans hold env values too (a DEPLOY carries the env).
 */
export class StackStore {
  constructor(private readonly home: HomeLayout) {}

  stacks(): string[] {
    if (!existsSync(this.home.stacksDir)) return [];
    return readdirSync(this.home.stacksDir).filter((s) => this.releases(s).length > 0 || existsSync(this.home.repo(s))).sort();
  }

  exists(stack: string): boolean {
    return existsSync(this.home.stackDir(stack));
  }

  /** Throws StackNotFoundError for a stack never pushed. */
  check(stack: string): void {
    if (!isStackName(stack) || !this.exists(stack)) throw new StackNotFoundError(stack);
  }

  private buildDir(stack: string): string {
    return this.home.stackBuild(stack);
  }

  /** Version numbers of the stack's releases, oldest first. */
  versions(stack: string): number[] {
    const dir = this.buildDir(stack);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((name) => /^v\d+$/.test(name) && existsSync(join(dir, name, 'release.json')))
      .map((name) => Number(name.slice(1)))
      .sort((a, b) => a - b);
  }

  releases(stack: string): ReleaseRecord[] {
    return this.versions(stack).map((v) => this.release(stack, v));
  }

  release(stack: string, version: number): ReleaseRecord {
    const file = join(this.buildDir(stack), `v${version}`, 'release.json');
    if (!existsSync(file)) throw new ReleaseNotFoundError(stack, version);
    return JSON.parse(readFileSync(file, 'utf8')) as ReleaseRecord;
  }

  latest(stack: string): ReleaseRecord | undefined {
    const v = this.versions(stack).at(-1);
    return v === undefined ? undefined : this.release(stack, v);
  }

  /** The number the next release gets (never reused, even after a failed task). */
  nextVersion(stack: string, taken: number[] = []): number {
    return Math.max(0, ...this.versions(stack), ...taken) + 1;
  }

  /** Records a release: the commit point of a task. */
  saveRelease(record: ReleaseRecord): void {
    const dir = join(this.buildDir(record.stack), `v${record.version}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    atomicWrite(join(dir, 'plan.json'), `${JSON.stringify(record.plan, null, 2)}\n`, 0o600);
    atomicWrite(join(dir, 'release.json'), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  private envDir(stack: string): string {
    return this.home.stackEnv(stack);
  }

  env(stack: string): Record<string, string> {
    const dir = this.envDir(stack);
    if (!existsSync(dir)) return {};
    const env: Record<string, string> = {};
    for (const key of readdirSync(dir).filter((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)).sort()) {
      env[key] = readFileSync(join(dir, key), 'utf8');
    }
    return env;
  }

  /** Makes the env files say exactly `env`. */
  writeEnv(stack: string, env: Record<string, string>): void {
    const dir = this.envDir(stack);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const key of readdirSync(dir)) {
      if (!(key in env)) rmSync(join(dir, key), { force: true });
    }
    for (const [key, value] of Object.entries(env)) atomicWrite(join(dir, key), value, 0o600);
  }

  /**
   * The stack's control secret: what its elements' control sockets answer to (given to every
   * wired container as `QUARRY_CONTROL_KEY`). Made (32 random bytes, hex) the first time it is
   * asked for, the stack's first deploy, and the same from then on, across pushes and restarts.
   */
  controlKey(stack: string): string {
    const file = join(this.home.stackDir(stack), 'control.key');
    if (existsSync(file)) {
      const key = readFileSync(file, 'utf8').trim();
      if (key !== '') return key;
    }
    mkdirSync(this.home.stackDir(stack), { recursive: true, mode: 0o700 });
    const key = newControlKey();
    atomicWrite(file, key, 0o600);
    return key;
  }
}
