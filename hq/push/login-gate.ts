import type { Socket } from 'node:net';
import { formatDuration } from '../config.js';

/** How many connections may wait to log in, and for how long (HQ's config; docs/hq.md, "Limits"). */
export interface LoginLimits {
  /** How long (ms) a connection has from its TCP accept to its login (`sshAuthTimeout`); then it is ended. */
  authTimeoutMs: number;
  /** Connections not logged in yet, in all (`sshMaxUnauthenticated`): a new one past it is refused. */
  maxUnauthenticated: number;
  /** Connections not logged in yet from one address (`sshMaxUnauthenticatedPerAddress`): a new one past it is refused. */
  maxUnauthenticatedPerAddress: number;
}

/** A connection let in: it counts against the limits until it logs in or ends. */
export interface Login {
  /** It logged in: it counts no more, and its timer stops. */
  authenticated(): void;
}

/** What a refused connection reads before it is closed (a line before SSH's own, as RFC 4253 allows). */
const REFUSED_LINE = 'quarry: too many connections are waiting to log in; try again later\r\n';

/** How many addresses a full spell remembers, to count them in its closing line. */
const MAX_REMEMBERED = 10_000;

interface AddressState {
  /** Its connections not logged in yet. */
  waiting: number;
  /** Refused over the per-address cap, since it last had none waiting. */
  refused: number;
  /** Ended by the time-out, since it last had none waiting. */
  timedOut: number;
}

/**
 * The SSH endpoint's door (`GitSshServer`): every TCP connection is counted from its accept
 * until it logs in, as OpenSSH's MaxStartups and LoginGraceTime do (before SSH's handshake,
 * so a socket that never says a word counts too). A connection past a cap is refused at once
 * (a short line, then closed); one that has not logged in within the time-out is ended. A
 * logged-in connection counts no more, so connections that never log in can take no place
 * of a pusher's. The per-address cap is below the total one, so one address alone cannot
 * fill the door. An address is an IPv4 address, or an IPv6 client's /64 (one host commonly
 * has a whole /64 to pick addresses from).
 *
 * HQ's log hears of it once per address and per kind while that address has connections
 * waiting, and once when the total cap is reached, with the counts when the spell is over:
 * never a line per connection, and only addresses and counts.
 */
export class LoginGate {
  private total = 0;
  private readonly addresses = new Map<string, AddressState>();
  private readonly sockets = new Set<Socket>();
  /** Since the total cap was reached and until no more than half of it wait: how many it refused, and from where. */
  private full: { refused: number; from: Set<string> } | undefined;

  constructor(private readonly limits: LoginLimits, private readonly log: (line: string) => void) {}

  /** Connections not logged in yet, now. */
  get waiting(): number {
    return this.total;
  }

  /** Lets the connection in (counted, timed), or refuses it (closed) and returns undefined. */
  admit(socket: Socket): Login | undefined {
    const { authTimeoutMs, maxUnauthenticated, maxUnauthenticatedPerAddress } = this.limits;
    socket.on('error', () => undefined);
    const address = addressOf(socket.remoteAddress ?? '');
    const known = this.addresses.get(address);
    if (known && known.waiting >= maxUnauthenticatedPerAddress) {
      if (++known.refused === 1) {
        this.log(`ssh ${address}: ${known.waiting} of its connections ${known.waiting === 1 ? 'waits' : 'wait'} to log in (sshMaxUnauthenticatedPerAddress); ` +
          'refusing more from it until they log in or end');
      }
      refuse(socket);
      return undefined;
    }
    if (this.total >= maxUnauthenticated) {
      if (!this.full) {
        this.full = { refused: 0, from: new Set() };
        this.log(`ssh: ${this.total} connection${this.total === 1 ? ' waits' : 's wait'} to log in (sshMaxUnauthenticated); ` +
          `refusing new ones while that many wait (first refused: ${address})`);
      }
      this.full.refused += 1;
      if (this.full.from.size < MAX_REMEMBERED) this.full.from.add(address);
      refuse(socket);
      return undefined;
    }

    const state = known ?? { waiting: 0, refused: 0, timedOut: 0 };
    this.addresses.set(address, state);
    state.waiting += 1;
    this.total += 1;
    this.sockets.add(socket);
    const timer = setTimeout(() => {
      if (++state.timedOut === 1) {
        this.log(`ssh ${address}: a connection did not log in within ${formatDuration(authTimeoutMs)} (sshAuthTimeout); ended`);
      }
      socket.destroy();
    }, authTimeoutMs);
    let counted = true;
    const leave = () => {
      if (!counted) return;
      counted = false;
      clearTimeout(timer);
      this.sockets.delete(socket);
      this.total -= 1;
      state.waiting -= 1;
      if (state.waiting === 0) {
        this.addresses.delete(address);
        if (state.refused + state.timedOut > 1) {
          const counts = [
            ...(state.refused > 0 ? [`${state.refused} refused (sshMaxUnauthenticatedPerAddress)`] : []),
            ...(state.timedOut > 0 ? [`${state.timedOut} ended for not logging in within ${formatDuration(authTimeoutMs)} (sshAuthTimeout)`] : []),
          ];
          this.log(`ssh ${address}: none of its connections waits to log in now; in all ${counts.join(', ')}`);
        }
      }
      if (this.full && this.total <= maxUnauthenticated / 2) {
        this.log(`ssh: ${this.total} connection${this.total === 1 ? ' waits' : 's wait'} to log in now; ` +
          `${this.full.refused} were refused while ${maxUnauthenticated} waited (sshMaxUnauthenticated), ` +
          `from ${this.full.from.size}${this.full.from.size >= MAX_REMEMBERED ? ' or more' : ''} address${this.full.from.size === 1 ? '' : 'es'}`);
        this.full = undefined;
      }
    };
    socket.once('close', leave);
    return { authenticated: leave };
  }

  /** Ends every connection that has not logged in (HQ stops). */
  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}

/** Refused: the line, then closed (not left half-open for a client that never closes its side). */
function refuse(socket: Socket): void {
  socket.end(REFUSED_LINE, () => socket.destroy());
}

/**
 * The address a connection is counted under: an IPv4 address as it is (also when it comes
 * as an IPv4-mapped IPv6 address), an IPv6 address as its /64 (`2001:db8:0:1::/64`).
 */
export function addressOf(ip: string): string {
  const bare = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  if (mapped) return mapped[1]!;
  if (!bare.includes(':')) return bare;
  const groups = (part: string) => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])));
  const [head = '', tail] = bare.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  const prefix = all.slice(0, 4).map((g) => (Number.parseInt(g, 16) || 0).toString(16));
  return `${prefix.join(':')}::/64`;
}
