import { QuarryError } from '../errors/index.js';

/** Something a fleet's provider could not do; the message says what, where and what to do. */
export class PacificError extends QuarryError {}

/** A size slug no provider understands, or a memory larger than every known size. */
export class UnknownSizeError extends PacificError {}

/** `remove` or `resize` of an id the provider does not know. */
export class UnknownServerError extends PacificError {
  readonly id: string;
  constructor(provider: string, id: string) {
    super(`${provider} provider: no server "${id}" (see the ids that \`list()\` / \`quarry servers\` show)`);
    this.id = id;
  }
}

/** The provider cannot do this at all (resizing a machine quarry does not own). */
export class UnsupportedOperationError extends PacificError {}

/** No more servers can be had: a static fleet has no machine left that has not joined. */
export class NoCapacityError extends PacificError {}

/** A new (or resized) server did not come up: its sshd or its docker engine never answered. */
export class ServerBootError extends PacificError {
  readonly server: string;
  constructor(server: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.server = server;
  }
}

/** An `added`, `removed` or `resized` handler failed; the message says what was undone. */
export class ProviderHandlerError extends PacificError {
  readonly event: string;
  constructor(event: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.event = event;
  }
}

/**
 * DigitalOcean refused a request. Carries DigitalOcean's own `id` (`not_found`,
 * `unprocessable_entity`, …) and `message`, and the request it answered (never the token).
 */
export class DigitalOceanApiError extends PacificError {
  readonly status: number;
  readonly id: string;
  readonly apiMessage: string;
  readonly requestId: string | undefined;
  readonly request: string;
  constructor(request: string, status: number, id: string, apiMessage: string, requestId?: string) {
    super(`DigitalOcean refused ${request} (HTTP ${status}, ${id}): ${apiMessage}${requestId ? ` [request ${requestId}]` : ''}`);
    this.status = status;
    this.id = id;
    this.apiMessage = apiMessage;
    this.requestId = requestId;
    this.request = request;
  }
}

/** A droplet action (power_off, resize, power_on, create) ended `errored`. */
export class DigitalOceanActionError extends PacificError {
  readonly actionId: number;
  readonly type: string;
  constructor(actionId: number, type: string, droplet: number | null) {
    super(`DigitalOcean action ${actionId} (${type}) on droplet ${droplet ?? '?'} ended "errored"; see the droplet's history in the DigitalOcean control panel, then try again`);
    this.actionId = actionId;
    this.type = type;
  }
}

/**
 * A server showed an SSH host key other than the one pinned for it: the connection was
 * dropped during the key exchange, before quarry logged in, so nothing ran there. Names the
 * server and both keys' SHA256 fingerprints (as `ssh-keygen -l` prints them).
 */
export class HostKeyMismatchError extends PacificError {
  readonly server: string;
  readonly address: string;
  /** The pinned key's fingerprint. */
  readonly expected: string;
  /** The fingerprint of the key the server showed. */
  readonly shown: string;
  constructor(server: string, address: string, expected: string, shown: string) {
    super(`server ${server} (${address}) showed SSH host key ${shown}, not the ${expected} pinned for it: refused before logging in, nothing was run there. ` +
      'Someone may be in the way, or the server was rebuilt outside quarry; if you know it was rebuilt, remove it and let quarry make a new one');
    this.server = server;
    this.address = address;
    this.expected = expected;
    this.shown = shown;
  }
}
