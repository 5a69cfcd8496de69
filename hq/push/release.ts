import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { CompileError, compileFolder, type StackSpec } from '../../compiler/index.js';
import { QuarryError } from '../../errors/index.js';
import { buildUnitImages, ImageBuildError, type ImageBuild, type Progress } from '../../launcher/index.js';
import { diffPlan, formatPlan, PREVIEW_DIGEST_KEY, unitDefinitions } from '../../plan/index.js';
import { exportCommit } from './checkout.js';
import type { HomeLayout } from '../../home/index.js';
import { deployedUpdate, type RefUpdate } from './refs.js';
import { freshSrcFolder, publishSrc } from './src-folder.js';
import type { OnRelease, PushInfo } from '../control.js';
import { StackMismatchError } from '../errors.js';
import { DEFAULT_BUILD_MEMORY, DEFAULT_BUILD_TIMEOUT_MS, formatDuration, formatSize } from '../config.js';

/** The limits on a push's builds (HQ's config: `buildTimeout`, `buildMemory`). */
export interface PushBuildLimits {
  /** ms; default 15 min. */
  buildTimeout?: number;
  /** bytes; default 2 GB. */
  buildMemory?: number;
}

/** git's push options (`git push -o KEY=VALUE`), from the hook's environment. */
export function pushInfo(commit: string, git: Record<string, string>): PushInfo {
  const count = Number(git.GIT_PUSH_OPTION_COUNT ?? 0);
  const replace: string[] = [];
  for (let i = 0; i < count && i < 64; i++) {
    const option = git[`GIT_PUSH_OPTION_${i}`] ?? '';
    const [key, value] = [option.slice(0, option.indexOf('=')), option.slice(option.indexOf('=') + 1)];
    if (key === 'replace' && value !== '') replace.push(...value.split(',').map((v) => v.trim()).filter(Boolean));
    else throw new QuarryError(`push option '${option}' is not known; quarry takes -o replace=SERVICE`);
  }
  return { commit, replace };
}

/** The default release: shows the plan against an empty grid; nothing is started (so its digests need no secret key). */
export const printPlan: OnRelease = async (_stack, _srcDir, spec, progress) => {
  const plan = diffPlan(spec, undefined, { digestKey: PREVIEW_DIGEST_KEY });
  progress.step('Plan');
  for (const notice of plan.notices) progress.info(`note: ${notice}`);
  progress.info(formatPlan(spec.name, plan.instructions).trimEnd());
};

/** One push being decided: what the pre-receive hook handed over, and where to report. */
export interface PushRequest {
  home: HomeLayout;
  stack: string;
  repo: string;
  updates: RefUpdate[];
  /** git's quarantine variables, from the hook's environment. */
  quarantine: Record<string, string>;
  docker: Docker;
  onRelease: OnRelease;
  progress: Progress;
  /** Limits on the builds; absent: the config's defaults. */
  limits?: PushBuildLimits;
  /**
   * False once the hook is gone: git's receive-pack ended (HQ stopping), so the ref will not
   * move. A pusher that goes away does not end it: its push carries on (`GitSshServer`).
   */
  pusherWaiting(): boolean;
}


/**
 * The pre-receive decision: check out the pushed commit, compile it, build its images, hand
 * it to `onRelease`, and publish it as the stack's `src`. Resolves with the hook's exit
 * code: 0 accepts the push, anything else rejects it (and the ref does not move).
 */
export async function receivePush(push: PushRequest): Promise<number> {
  const { progress } = push;
  let folder: string | undefined;
  try {
    const update = deployedUpdate(push.updates);
    const branch = update.ref.replace(/^refs\/heads\//, '');
    progress.step(`quarry: deploying ${push.stack} from ${branch} at ${update.newSha.slice(0, 7)}`);

    folder = freshSrcFolder(push.home, push.stack, update.newSha);
    await exportCommit(push.repo, update.newSha, push.quarantine, folder);

    progress.step('Compiling quarry.yml and the topology');
    const spec = compileFolder(folder, { defaultName: push.stack });
    if (spec.name !== push.stack) throw mismatch(folder, spec.name, push.stack);
    const { nodes, elements } = { nodes: spec.nodes.length, elements: spec.elements.length };
    progress.info(`stack ${spec.name}: ${nodes} node${nodes === 1 ? '' : 's'}, ${elements} element${elements === 1 ? '' : 's'}`);

    const info = pushInfo(update.newSha, push.quarantine);
    await buildImages(push.docker, folder, spec, progress, push.limits);
    if (!push.pusherWaiting()) throw new QuarryError('git receive-pack went away before the deploy; nothing was changed');
    await push.onRelease(push.stack, folder, spec, progress, info);

    // The release runs now, so its code is published even if git can no longer move the ref.
    publishSrc(push.home, push.stack, folder);
    folder = undefined;
    if (!push.pusherWaiting()) {
      progress.error(`git receive-pack went away after the deploy: ${push.stack} runs ${update.newSha.slice(0, 7)}, but ${update.ref} was not moved; push again`);
      return 1;
    }
    progress.step(`${push.stack} accepted at ${update.newSha.slice(0, 7)}`);
    return 0;
  } catch (err) {
    if (err instanceof QuarryError) progress.error(err.message);
    else progress.error(`quarry: internal error: ${(err as Error)?.stack ?? String(err)}`);
    progress.error(`push rejected; what runs keeps running`);
    return 1;
  } finally {
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * Builds the image of every node with a build folder and of every element class (on the
 * runtime image when the class has no Dockerfile), the runtime image first; cached by content
 * tag. An image no unit builds must be on HQ's engine: there is no registry to pull it from.
 */
async function buildImages(docker: Docker, root: string, spec: StackSpec, progress: Progress, limits: PushBuildLimits = {}): Promise<void> {
  const what = ({ unit }: ImageBuild) => (unit.kind === 'element' ? `element class ${unit.build?.class ?? unit.name}` : `node ${unit.name}`);
  const timeoutMs = limits.buildTimeout ?? DEFAULT_BUILD_TIMEOUT_MS;
  const memory = limits.buildMemory ?? DEFAULT_BUILD_MEMORY;
  try {
    await buildUnitImages(docker, root, unitDefinitions(spec), {
      runtime: (line) => progress.info(line),
      building: (build) => progress.step(`Building ${what(build)} from ./${build.folder} (${build.image})`),
      line: (_build, line) => progress.info(line),
      built: (_build, result) => { if (result === 'cached') progress.info('unchanged: using the image built before'); },
      missing: ({ unit, image }) => new QuarryError(`node ${unit.name}: the image ${image} is not on HQ's docker engine, ` +
        `and there is no registry to pull it from; build it there (docker build -t ${image} …) or give the node a build folder`),
      timedOut: (build) => new QuarryError(`${what(build)}: the docker build of ${build.image} ran past buildTimeout (${formatDuration(timeoutMs)}) and was stopped; ` +
        'make the build quicker, or raise "buildTimeout" in HQ\'s config (docs/hq.md, "Limits")'),
    }, { timeoutMs, memory });
  } catch (err) {
    if (err instanceof ImageBuildError) {
      const message = err.message.split(`${root}/`).join('').replace(/^building /, 'docker build of ');
      // A step killed (137: SIGKILL) under a memory limit is most likely the kernel's OOM killer.
      const killed = /non-zero code: 137\b|exit code: 137\b|\bOOM\b|out of memory/i.test(err.message);
      throw new QuarryError(killed
        ? `${message}\na build step was killed, most likely for going past buildMemory (${formatSize(memory)}); ` +
          'use less memory in the build, or raise "buildMemory" in HQ\'s config (docs/hq.md, "Limits")'
        : message);
    }
    throw err;
  }
}

function mismatch(folder: string, named: string, pushed: string): StackMismatchError {
  const lines = readFileSync(join(folder, 'quarry.yml'), 'utf8').split('\n');
  const index = lines.findIndex((l) => /^name\s*:/.test(l));
  let at = '1:1';
  if (index >= 0) {
    const line = lines[index]!;
    const colon = line.indexOf(':');
    at = `${index + 1}:${colon + 2 + Math.max(0, line.slice(colon + 1).search(/\S/))}`;
  }
  return new StackMismatchError(
    `quarry.yml:${at}: this stack is named '${named}', but the push went to stack '${pushed}'; ` +
    `push to .../${named}, or change or remove 'name:'\n1 error; nothing was changed`);
}
