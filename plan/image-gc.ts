import type { StackSpec } from '../compiler/index.js';
import { unitDefinitions } from './desired.js';

/*
 * Which of the images on one engine can go (issue 16: "old images are collected, the last N
 * releases kept"). Pure: the caller lists the releases, the containers and the engine's tags;
 * the launcher's `collectImages` carries the answer out. Conservative by design: an image is
 * removed only when everything says it is quarry's own build of a stack HQ has releases of,
 * and nothing that may still run or be rolled back to names it.
 */

/** One release of a stack, as far as its images go. */
export interface ReleaseImages {
  version: number;
  /** Every image the release runs: each unit's `image` (`releaseImages` derives them from a spec). */
  images: readonly string[];
  /**
   * Those of them quarry.yml names itself (`image:`) instead of quarry building them: quarry
   * cannot make them again, so they are never removed, however old the release.
   */
  given?: readonly string[];
}

export interface ImageGcInput {
  /**
   * Each stack HQ has releases of, with all of them (any order). A stack that is not here, or
   * has none, is unknown: its images are kept.
   */
  releases: Readonly<Record<string, readonly ReleaseImages[]>>;
  /** The images of each stack's last `keep` releases (by version) are kept; an integer ≥ 1 (HQ's `keepReleases`). */
  keep: number;
  /**
   * Images that must stay whatever the releases say: those containers use now, on any engine,
   * running or not, and those of builds in flight (a push whose release is not recorded yet).
   */
  inUse: readonly string[];
  /** The image tags on the engine being collected (docker's RepoTags). */
  present: readonly string[];
  /**
   * Registry hosts (`10.0.0.1:5000`) whose `<host>/quarry/…` tags are quarry's images under
   * another name (a server that pulls them): such a tag is judged as its `quarry/…` name.
   */
  registries?: readonly string[];
}

/** Why a present tag stays. */
export type ImageKeepReason =
  /** Not `quarry/<repository>:<tag>`: someone else's image. */
  | 'not quarry\'s'
  /** `quarry/<name>` with no stack in it: quarry/node, quarry/runtime, quarry/agent, quarry/server. */
  | 'base image'
  /** No stack with a release record builds images under this name (a stack run by `quarry run`, one whose records are gone). */
  | 'unknown stack'
  /** A release names it as quarry.yml's own `image:`. */
  | 'given'
  /** One of a stack's last `keep` releases names it. */
  | 'kept release'
  /** A container uses it, or a build in flight made it. */
  | 'in use';

/** The one-line sum of a collection: how many present tags go, how many stay. */
export interface ImageGcSummary {
  removed: number;
  kept: number;
}

export interface ImageGcDecision {
  /** The present tags to remove, in the order given. */
  remove: string[];
  /** Every other present tag, with the first reason (in the order of ImageKeepReason) it stays for. */
  keep: Array<{ tag: string; why: ImageKeepReason }>;
  summary: ImageGcSummary;
}

/** `quarry/<repository>:<tag>`: a name without a registry host and a tag (not a digest). */
const QUARRY_TAG = /^quarry\/([a-z0-9]+(?:[._-][a-z0-9]+)*):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/;

/** The images one release names, from its compiled stack: what `unitDefinitions` gives, split into built and given. */
export function releaseImages(version: number, spec: StackSpec): ReleaseImages {
  const units = unitDefinitions(spec);
  return {
    version,
    images: [...new Set(units.map((u) => u.image))],
    given: [...new Set(units.filter((u) => u.build === undefined).map((u) => u.image))],
  };
}

/**
 * Which present tags to remove: those of the form `quarry/<stack>-<name>:<tag>` under a name
 * some release of a known stack built (`buildTag`), that no release names as its own `image:`,
 * no one of each stack's last `keep` releases names, and no container (nor build in flight)
 * uses. Everything else stays: base images, other people's images, images of stacks without a
 * release record. Throws on a `keep` below 1 (there must always be the release that runs).
 */
export function imageGc(input: ImageGcInput): ImageGcDecision {
  if (!Number.isInteger(input.keep) || input.keep < 1) throw new RangeError(`image collection: keep must be an integer of at least 1, got ${input.keep}`);
  const local = localName(input.registries ?? []);

  const kept = new Set<string>();
  const given = new Set<string>();
  /** The repositories (`quarry/<stack>-<name>`) that quarry built for known stacks. */
  const built = new Set<string>();
  for (const [stack, releases] of Object.entries(input.releases)) {
    const newest = [...releases].sort((a, b) => b.version - a.version);
    for (const release of newest.slice(0, input.keep)) for (const image of release.images) kept.add(local(image));
    for (const release of releases) {
      for (const image of release.given ?? []) given.add(local(image));
      const theirs = new Set((release.given ?? []).map(local));
      for (const image of release.images.map(local)) {
        const repository = QUARRY_TAG.exec(image)?.[1];
        if (repository !== undefined && !theirs.has(image) && repository.startsWith(`${stack}-`)) built.add(repository);
      }
    }
  }
  const inUse = new Set(input.inUse.map(local));

  const remove: string[] = [];
  const keep: ImageGcDecision['keep'] = [];
  const seen = new Set<string>();
  for (const tag of input.present) {
    if (seen.has(tag)) continue;
    seen.add(tag);
    const name = local(tag);
    const repository = QUARRY_TAG.exec(name)?.[1];
    const why: ImageKeepReason | undefined =
      repository === undefined ? 'not quarry\'s'
        : !repository.includes('-') ? 'base image'
          : !built.has(repository) ? 'unknown stack'
            : given.has(name) ? 'given'
              : kept.has(name) ? 'kept release'
                : inUse.has(name) ? 'in use'
                  : undefined;
    if (why === undefined) remove.push(tag);
    else keep.push({ tag, why });
  }
  return { remove, keep, summary: { removed: remove.length, kept: keep.length } };
}

/** `image gc: 3 removed, 12 kept`: the summary as one line of a log. */
export function formatImageGc(summary: ImageGcSummary): string {
  return `image gc: ${summary.removed} removed, ${summary.kept} kept`;
}

/** A tag as quarry names it: `<registry>/quarry/…` for a registry given becomes `quarry/…`. */
function localName(registries: readonly string[]): (tag: string) => string {
  return (tag) => {
    for (const host of registries) if (tag.startsWith(`${host}/quarry/`)) return tag.slice(host.length + 1);
    return tag;
  };
}
