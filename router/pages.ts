import { STATUS_CODES } from 'node:http';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface Page {
  status: number;
  body: string;
}

function page(status: number, title: string, lines: string[]): Page {
  const body = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${status} ${escapeHtml(title)}</title>` +
    '<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}' +
    'h1{font-size:1.4em}code{background:#f3f3f3;padding:0 .2em}</style></head>\n' +
    `<body><h1>${status} ${escapeHtml(title)}</h1>\n${lines.map((l) => `<p>${l}</p>`).join('\n')}\n` +
    '<p><small>quarry router</small></p></body></html>\n';
  return { status, body };
}

/** No route for the Host: say which host was asked for and why nothing answers it. */
export function unknownDomainPage(host: string | undefined): Page {
  if (host === undefined || host === '') {
    return page(404, 'No such app', ['The request named no host (no <code>Host</code> header), so there is no app to send it to.']);
  }
  return page(404, 'No such app', [
    `No app on this quarry answers <code>${escapeHtml(host)}</code>.`,
    'If you own it: check the <code>domains</code> of the web node in <code>quarry.yml</code>, ' +
      'and that its containers are up and healthy (<code>quarry ps</code>).',
  ]);
}

/** Every backend of the domain refused or failed before answering. */
export function badGatewayPage(domain: string): Page {
  return page(502, STATUS_CODES[502]!, [
    `No backend of <code>${escapeHtml(domain)}</code> answered. The app may be restarting or down; try again in a moment.`,
  ]);
}

/** A backend took the request but went silent for too long. */
export function gatewayTimeoutPage(domain: string): Page {
  return page(504, STATUS_CODES[504]!, [
    `The backend of <code>${escapeHtml(domain)}</code> did not answer in time.`,
  ]);
}

/** The router has not read its routes yet (etcd unreachable since it started). */
export function notReadyPage(): Page {
  return page(503, 'Routes not loaded yet', ['This router has not loaded its routes yet. Try again in a moment.']);
}

/** A request target the router cannot use (absolute form with no host, or not http). */
export function badTargetPage(): Page {
  return page(400, STATUS_CODES[400]!, ['The request target is neither a path nor an <code>http://</code> URL with a host.']);
}

/** `Upgrade: h2c` (cleartext HTTP/2): refused rather than passed to an app unchecked. */
export function h2cRefusedPage(): Page {
  return page(400, STATUS_CODES[400]!, [
    'This router does not upgrade HTTP/1.1 connections to cleartext HTTP/2 (<code>Upgrade: h2c</code>). ' +
      'Send the request again without that upgrade.',
  ]);
}

/** The router holds as many upgraded connections (WebSockets) as it is set to. */
export function tooManyTunnelsPage(): Page {
  return page(503, STATUS_CODES[503]!, ['This router holds as many open WebSocket connections as it may. Try again in a moment.']);
}
