/**
 * The domain a request is for, from its Host header: port stripped, case folded, a trailing
 * dot dropped (`Example.COM.:8080` → `example.com`). Undefined when there is no usable host.
 */
export function domainOfHost(host: string | undefined): string | undefined {
  if (!host) return undefined;
  let name: string;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    name = host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    name = colon < 0 ? host : host.slice(0, colon);
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name === '' ? undefined : name.toLowerCase();
}

/**
 * The wildcard route that would cover a domain: `*.` and the domain less its first label.
 * `a.example.com` → `*.example.com`; a name of one label has none.
 */
export function wildcardOf(domain: string): string | undefined {
  const dot = domain.indexOf('.');
  return dot <= 0 || dot === domain.length - 1 ? undefined : `*${domain.slice(dot)}`;
}
