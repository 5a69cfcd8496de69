/** The shapes of the names a stack uses, and why each is so. */

/** Stacks, nodes and elements: DNS labels, since they go into container and host names
 * (`<stack>.<name>.<n>`), and into env names (`<NAME>_HOST`). No dots, no underscores. */
export const NAME = /^[a-z][a-z0-9-]{0,62}$/;
export const NAME_RULE = 'lower-case letters, digits and dashes, starting with a letter';

/** Port and element-class names appear in `a.port -> b.port`: no dots or spaces. */
export const PORT = /^[A-Za-z_][A-Za-z0-9_-]*$/;
export const PORT_RULE = 'letters, digits, _ and -, starting with a letter';

export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A host name, optionally with one leading `*.` label matching any one sub-domain. */
export const DOMAIN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A docker image reference: [registry/]path[:tag][@digest], lower case. */
export const IMAGE = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

/** The env names quarry sets from a service: `redis` → REDIS_HOST, REDIS_PORT. */
export function serviceEnvNames(service: string): { host: string; port: string } {
  const base = service.toUpperCase().replace(/-/g, '_');
  return { host: `${base}_HOST`, port: `${base}_PORT` };
}

/** A folder name made into a stack name: `My_App` → `my-app`. */
export function stackNameFrom(folder: string): string {
  return folder.toLowerCase().replace(/\.git$/, '').replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+|-+$/g, '');
}
