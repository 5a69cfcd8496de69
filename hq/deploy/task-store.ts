import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWrite, type HomeLayout } from '../../home/index.js';
import type { Progress } from '../../launcher/index.js';
import type { TaskMessage, TaskRecord } from './records.js';

/**
 * Tasks under `tasks/`: one JSON file each, rewritten (atomically) with every message, so
 * that what a task did survives HQ's death, and a task found `running` at start is one HQ
 * must finish or undo.
 */
export class TaskStore {
  readonly dir: string;

  constructor(home: HomeLayout) {
    this.dir = home.tasksDir;
  }

  begin(fields: Omit<TaskRecord, 'id' | 'state' | 'startedAt' | 'messages'>): Task {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const at = new Date().toISOString();
    const id = `${at.replace(/[-:.]/g, '').slice(0, 15)}-${fields.stack}-${randomBytes(3).toString('hex')}`;
    const task = new Task(join(this.dir, `${id}.json`), { ...fields, id, state: 'running', startedAt: at, messages: [] });
    task.save();
    return task;
  }

  all(): TaskRecord[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .sort()
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as TaskRecord);
  }

  running(): Task[] {
    return this.all().filter((t) => t.state === 'running').map((t) => new Task(join(this.dir, `${t.id}.json`), t));
  }

  /** Versions that running or failed tasks took, so that a release number is never reused. */
  versionsTaken(stack: string): number[] {
    return this.all().filter((t) => t.stack === stack).map((t) => t.version);
  }
}

/** A task being run: its messages go to the pusher or API caller and to the task's file. */
export class Task {
  constructor(private readonly file: string, readonly record: TaskRecord) {}

  save(): void {
    atomicWrite(this.file, `${JSON.stringify(this.record, null, 2)}\n`, 0o600);
  }

  /** A Progress that records each message before passing it on. */
  progress(to?: Progress): Progress {
    const note = (level: TaskMessage['level'], text: string) => {
      this.record.messages.push({ at: new Date().toISOString(), level, text });
      this.save();
    };
    return {
      step: (text) => { note('step', text); to?.step(text); },
      info: (text) => { note('info', text); to?.info(text); },
      error: (text) => { note('error', text); to?.error(text); },
    };
  }

  end(state: Exclude<TaskRecord['state'], 'running'>): void {
    this.record.state = state;
    this.record.endedAt = new Date().toISOString();
    this.save();
  }
}
