import { DockerProvider } from './docker-provider.js';
import { DigitalOceanProvider } from './do-provider.js';
import type { Provider } from './provider.js';
import {
  digitaloceanSchema, dockerSchema, parseSettings, providerOf, readQuarryKey, staticSchema,
} from './settings.js';
import { StaticProvider } from './static-provider.js';
import type { Progress, Server } from './types.js';

export interface CreateOptions {
  /** Names the settings in error messages (a config URL, or `grid.provider`). */
  source?: string;
  /**
   * The records HQ kept (`servers/<id>/settings.json`). The static provider takes the
   * machines that had joined from them; docker and DigitalOcean ask their API instead, and
   * DigitalOcean takes each server's pinned host key (`ssh.hostKey`) from them.
   */
  known?: readonly Server[];
  /** Shown each step of a long operation. */
  onProgress?: (progress: Progress) => void;
}

/**
 * The provider a settings object names (`provider: docker | static | digitalocean`), its
 * settings checked: a wrong one is a ConfigInvalidError that names its key.
 */
export function createProvider(settings: unknown, options: CreateOptions = {}): Provider {
  const source = options.source ?? 'pacific settings';
  let provider: Provider;
  switch (providerOf(settings, source)) {
    case 'docker': {
      const parsed = parseSettings(dockerSchema, settings, source);
      provider = new DockerProvider(parsed, readQuarryKey(parsed, source));
      break;
    }
    case 'static': {
      const parsed = parseSettings(staticSchema, settings, source);
      provider = new StaticProvider(parsed, readQuarryKey(parsed, source), source, options.known);
      break;
    }
    case 'digitalocean': {
      const parsed = parseSettings(digitaloceanSchema, settings, source);
      provider = new DigitalOceanProvider(parsed, readQuarryKey(parsed, source), undefined, options.known);
      break;
    }
  }
  if (options.onProgress) provider.on('progress', options.onProgress);
  return provider;
}
