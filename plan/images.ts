import type { UnitDefinition } from './model.js';

/**
 * How one image a stack runs comes to be: built from a folder with a Dockerfile, built on the
 * runtime image (an element class without a Dockerfile), or only present (a unit with an
 * `image:` and no build: there is no registry to pull it from).
 */
export type ImageNeed =
  | { how: 'present'; image: string; unit: UnitDefinition }
  | { how: 'dockerfile' | 'element'; image: string; unit: UnitDefinition; folder: string; main?: string };

export interface ImageBuilds {
  /** Whether the runtime image is wanted first: element images build on it, nodes with ports start `FROM quarry/runtime`. */
  runtime: boolean;
  /** Each image once, in the units' order (the first unit that runs it). */
  images: ImageNeed[];
}

/** Which images the units need, each once, and how each is made. Pure: nothing is asked of an engine. */
export function imageBuilds(units: readonly UnitDefinition[]): ImageBuilds {
  const images: ImageNeed[] = [];
  const seen = new Set<string>();
  for (const unit of units) {
    if (seen.has(unit.image)) continue;
    seen.add(unit.image);
    const build = unit.build;
    if (!build) {
      images.push({ how: 'present', image: unit.image, unit });
      continue;
    }
    images.push({
      how: unit.kind === 'element' && !build.dockerfile ? 'element' : 'dockerfile',
      image: unit.image, unit, folder: build.folder,
      ...(build.main !== undefined && { main: build.main }),
    });
  }
  return { runtime: units.some((u) => u.build !== undefined), images };
}
