import type { StackSpec } from '../../compiler/index.js';
import type { CurrentState, Instruction } from '../../plan/index.js';
import type { ReleaseReason } from '../control.js';

/**
 * One release as HQ keeps it (`stacks/<stack>/build/v<N>/release.json`): everything needed to
 * run it again, so that a rollback restores code (the compiled stack and its images), env
 * and scale together without rebuilding.
 */
export interface ReleaseRecord {
  stack: string;
  version: number;
  at: string;
  reason: ReleaseReason;
  description: string;
  commit: string;
  /** The compiled stack: its images are content-addressed tags, kept while a release names them. */
  spec: StackSpec;
  /** The env set by `quarry env` at this release (quarry.yml's own env is in `spec`). */
  env: Record<string, string>;
  /** What runs once this release is reached: each unit's digest, scale (set by quarry.yml or `quarry scale`) and domains. */
  current: CurrentState;
  /** The plan carried out to reach this release. */
  plan: Instruction[];
}

/** The states of a task: it runs, it finished, it failed (nothing changed), or HQ undid it after a crash. */
export type TaskState = 'running' | 'done' | 'failed' | 'undone';

export interface TaskMessage {
  at: string;
  level: 'step' | 'info' | 'error';
  text: string;
}

/** One change of a stack as HQ runs it (`tasks/<id>.json`), written at every step. */
export interface TaskRecord {
  id: string;
  stack: string;
  /** What asked for it; `heal`: the heal loop or a drain, on the stack's last release (it makes none). */
  reason: ReleaseReason | 'heal';
  description: string;
  state: TaskState;
  startedAt: string;
  endedAt?: string;
  /** The release this task makes; it exists under build/ once the task is done. */
  version: number;
  /** The release that ran before; what a crashed task is undone to (none on a first push). */
  previous?: number;
  messages: TaskMessage[];
}
