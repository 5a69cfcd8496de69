/**
 * An absolute-form request target (`GET http://shop.example/cart HTTP/1.1`), as a proxy-aware
 * client sends it: RFC 9112 §3.2.2 says the target's authority is the request's host, whatever
 * the Host header says, so the router routes by it, sends it on as Host, and passes the target
 * on in origin form (`/cart`), which is all an app expects.
 *
 * Returns undefined for an origin-form target (`/…`, or `*`), `null` for one that cannot be
 * used (not http or https, no host, user info in it): the client gets a 400.
 */
export function absoluteTarget(target: string): { host: string; path: string } | null | undefined {
  if (target.charCodeAt(0) === 47 /* / */ || target === '*') return undefined;
  const match = /^(https?):\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (!match) return null;
  const host = match[2]!;
  if (host === '' || host.includes('@')) return null;
  const rest = match[3]!;
  return { host, path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}
