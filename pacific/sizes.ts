import { UnknownSizeError } from './errors.js';
import type { ServerSize, SizeRequest } from './types.js';

/**
 * Server sizes are named the way DigitalOcean names them (`s-1vcpu-1gb`), by every provider:
 * one word for a size across a laptop grid and a cloud one. The docker provider turns the
 * memory into the container's limit and the cpus into its CPU weight; DigitalOcean takes
 * the slug as it is.
 */
const CATALOGUE: readonly ServerSize[] = [
  { slug: 's-1vcpu-512mb-10gb', memory: 512, cpus: 1, disk: 10 },
  { slug: 's-1vcpu-1gb', memory: 1024, cpus: 1, disk: 25 },
  { slug: 's-1vcpu-2gb', memory: 2048, cpus: 1, disk: 50 },
  { slug: 's-2vcpu-2gb', memory: 2048, cpus: 2, disk: 60 },
  { slug: 's-2vcpu-4gb', memory: 4096, cpus: 2, disk: 80 },
  { slug: 's-4vcpu-8gb', memory: 8192, cpus: 4, disk: 160 },
  { slug: 's-8vcpu-16gb', memory: 16384, cpus: 8, disk: 320 },
  { slug: 'c-2', memory: 4096, cpus: 2, disk: 25 },
  { slug: 'g-2vcpu-8gb', memory: 8192, cpus: 2, disk: 25 },
  { slug: 'm-2vcpu-16gb', memory: 16384, cpus: 2, disk: 50 },
];

/** The sizes quarry knows by name, smallest first. */
export function knownSizes(): ServerSize[] {
  return CATALOGUE.map((size) => ({ ...size }));
}

// `<family>-<n>vcpu-<m>gb|mb[-<d>gb][-<variant>…]`, e.g. s-2vcpu-4gb-amd, s-1vcpu-256mb.
const SLUG = /^[a-z]+-(\d+)vcpu-(\d+)(gb|mb)(?:-(\d+)gb)?(?:-[a-z0-9]+)*$/;

/** The size a slug names: a known one, or one read off the slug's own pattern. */
export function parseSize(slug: string): ServerSize {
  const known = CATALOGUE.find((size) => size.slug === slug);
  if (known) return { ...known };
  const match = SLUG.exec(slug);
  if (!match) {
    throw new UnknownSizeError(`unknown server size "${slug}": use a slug like s-1vcpu-1gb or s-2vcpu-4gb (<cpus>vcpu-<memory>gb|mb), or a memory in MB`);
  }
  const cpus = Number(match[1]);
  const memory = Number(match[2]) * (match[3] === 'gb' ? 1024 : 1);
  if (cpus < 1 || memory < 64) {
    throw new UnknownSizeError(`server size "${slug}" is too small: at least 1 vcpu and 64 MB`);
  }
  return { slug, memory, cpus, disk: match[4] === undefined ? 0 : Number(match[4]) };
}

/** The smallest standard (`s-`) size with at least `memory` MB; fewer cpus first. */
export function sizeForMemory(memory: number): ServerSize {
  if (!Number.isFinite(memory) || memory <= 0) {
    throw new UnknownSizeError(`a server size in MB must be a positive number, got ${memory}`);
  }
  const fit = CATALOGUE
    .filter((size) => size.slug?.startsWith('s-') && size.memory >= memory)
    .sort((a, b) => a.memory - b.memory || a.cpus - b.cpus)[0];
  if (!fit) {
    const largest = CATALOGUE.filter((size) => size.slug?.startsWith('s-')).at(-1);
    throw new UnknownSizeError(`no known server size has ${memory} MB (the largest is ${largest?.slug}, ${largest?.memory} MB): name a slug instead`);
  }
  return { ...fit };
}

/** What `add(size)` and `resize(id, size)` mean by their argument. */
export function resolveSize(request: SizeRequest): ServerSize {
  return typeof request === 'number' ? sizeForMemory(request) : parseSize(request);
}

/** A size as the limits read back from a server give it (docker inspect: disk 0, not limited). */
export function sizeFromLimits(memory: number, cpus: number, disk = 0): ServerSize {
  const known = CATALOGUE.find((size) => size.memory === memory && size.cpus === cpus && (disk === 0 || size.disk === disk));
  if (known) return { ...known, disk };
  const shown = memory % 1024 === 0 ? `${memory / 1024}gb` : `${memory}mb`;
  return { slug: `s-${cpus}vcpu-${shown}`, memory, cpus, disk };
}
