import type { IncomingMessage } from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, not the message. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** Extra names a Connection header lists as hop-by-hop, lower-cased; usually none. */
function connectionTokens(raw: string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) {
        const name = token.trim().toLowerCase();
        if (name && name !== 'close' && name !== 'keep-alive' && name !== 'upgrade') (tokens ??= new Set()).add(name);
      }
    }
  }
  return tokens;
}

/**
 * The headers to send a backend, as a flat [name, value, …] list like `rawHeaders`: the
 * client's, less hop-by-hop ones, with X-Forwarded-For, -Proto and -Host set to what the
 * router saw. The client's own X-Forwarded-* are dropped, unless it is a trusted proxy
 * (`trusted`): then X-Forwarded-For is appended to, and its -Proto and -Host are kept. For an
 * upgrade, Connection and Upgrade stay.
 *
 * Only the first Host is passed (the one the request was routed by), replaced by `host` when
 * the request target named one (absolute form); and no Expect: the router's HTTP server has
 * already answered `100-continue` itself (and 417 to any other).
 */
export function requestHeaders(req: IncomingMessage, upgrade: boolean, trusted = false, targetHost?: string): string[] {
  const raw = req.rawHeaders;
  const extra = connectionTokens(raw);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let forwardedHost: string | undefined;
  let host: string | undefined;
  let authority: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    // HTTP/2's pseudo-headers (`:path`, `:authority`…) are not HTTP/1.1 headers; its Host is `:authority`.
    if (name.charCodeAt(0) === 58) {
      if (name === ':authority') authority = value;
      continue;
    }
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (upgrade && (lower === 'connection' || lower === 'upgrade')) out.push(name, value);
      continue;
    }
    if (FORWARDED.has(lower)) {
      if (!trusted) continue;
      if (lower === 'x-forwarded-for') forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      else if (lower === 'x-forwarded-proto') forwardedProto ??= value;
      else forwardedHost ??= value;
      continue;
    }
    if (extra?.has(lower)) continue;
    if (lower === 'host') {
      if (host !== undefined) continue;
      host = targetHost ?? value;
      out.push(name, host);
      continue;
    } else if (lower === 'expect') continue;
    out.push(name, value);
  }
  if (host === undefined && (targetHost ?? authority) !== undefined) out.push('Host', host = (targetHost ?? authority)!);
  const socket = req.socket;
  const client = socket.remoteAddress ?? '';
  out.push(
    'X-Forwarded-For', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`,
    'X-Forwarded-Proto', forwardedProto ?? ((socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'),
  );
  forwardedHost ??= host;
  if (forwardedHost !== undefined) out.push('X-Forwarded-Host', forwardedHost);
  return out;
}

/** Hop-by-hop header names by length, to skip most names without lower-casing them. */
const HOP_BY_HOP_LENGTHS = new Set([...HOP_BY_HOP].map((name) => name.length));

/**
 * A backend's response headers as undici hands them over (raw name and value buffers), as
 * strings to pass on to the client: all but the hop-by-hop ones.
 */
export function responseHeadersOf(raw: Buffer[]): string[] {
  const out: string[] = new Array(raw.length);
  let n = 0;
  let connection: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (HOP_BY_HOP_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') (connection ??= []).push('Connection', raw[i + 1]!.toString('latin1'));
        continue;
      }
    }
    out[n++] = name;
    out[n++] = raw[i + 1]!.toString('latin1');
  }
  out.length = n;
  // Names listed in Connection (other than keep-alive and close) are hop-by-hop too: rare.
  const extra = connection && connectionTokens(connection);
  if (!extra) return out;
  const kept: string[] = [];
  for (let i = 0; i < n; i += 2) if (!extra.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

/** A backend's response headers to pass on to the client: all but the hop-by-hop ones. */
export function responseHeaders(raw: string[]): string[] {
  const extra = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || extra?.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** A response head written as raw bytes, for connections that are no longer HTTP-managed. */
export function rawResponseHead(statusCode: number, statusMessage: string, raw: string[]): string {
  let head = `HTTP/1.1 ${statusCode} ${statusMessage}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${head}\r\n`;
}
