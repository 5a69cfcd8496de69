import type { StackSpec } from '../../compiler/index.js';
import { scalesOf, unitDefinitions } from '../../plan/index.js';
import type { ReleaseInfo } from '../control.js';
import type { ReleaseRecord } from './records.js';

/** A release as the API and the command line show it (env values left out). */
export function releaseInfo(r: ReleaseRecord, routerPort: number | undefined): ReleaseInfo {
  return {
    stack: r.stack, version: r.version, at: r.at, reason: r.reason, description: r.description, commit: r.commit,
    images: Object.fromEntries(unitDefinitions(r.spec).map((u) => [u.name, u.image])),
    scale: scalesOf(r.current),
    envKeys: Object.keys(r.env).sort(),
    urls: stackUrls(r.spec, routerPort),
  };
}

/** The URLs a stack's web nodes answer on through the router (a `*.` domain as its `www.`). */
function stackUrls(spec: StackSpec, routerPort: number | undefined): string[] {
  return spec.nodes.filter((n) => n.type === 'web').flatMap((n) => n.domains)
    .map((d) => `http://${d.replace(/^\*\./, 'www.')}${routerPort !== undefined && routerPort !== 80 ? `:${routerPort}` : ''}/`);
}
