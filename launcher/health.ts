import { connect } from 'node:net';
import { request } from 'node:http';
import type Docker from 'dockerode';
import { UnhealthyError } from './errors.js';

export interface HealthCheck {
  /** The port the container listens on. */
  port?: number;
  /** A path that must answer 2xx to GET; without one, accepting connections on `port` is healthy. */
  path?: string;
  timeoutMs?: number;
  /** How long a container without a port must keep running to count as started. */
  settleMs?: number;
  /**
   * Where to reach `port` instead of the container's own address: its published port on a
   * server of a grid (the container's address is private to that server). A published port
   * is answered by docker's port proxy even while nothing listens behind it, so without a
   * `path` the connection must also stay open a moment (the proxy closes it at once then).
   */
  at?: { host: string; port: number };
}

/**
 * Waits until a container is healthy: running, not restarting, and (with a port) accepting
 * connections on its own address, or answering 2xx on the health path. Checks go to the
 * container's address on its network, not through the published port: docker's port
 * proxy accepts connections even while nothing listens behind it.
 */
export async function waitHealthy(docker: Docker, id: string, check: HealthCheck): Promise<void> {
  const container = docker.getContainer(id);
  const deadline = Date.now() + (check.timeoutMs ?? 60_000);
  const started = Date.now();
  let reason = 'it did not answer in time';
  for (;;) {
    const info = await container.inspect();
    const name = info.Name.replace(/^\//, '');
    if (info.State.Status === 'exited' || info.State.Status === 'dead') {
      throw new UnhealthyError(name, `it exited with code ${info.State.ExitCode}`, await lastOutput(docker, id));
    }
    if (info.State.Restarting || info.RestartCount > 0) {
      throw new UnhealthyError(name, `it exited and is being restarted (${info.RestartCount} restart${info.RestartCount === 1 ? '' : 's'} so far)`, await lastOutput(docker, id));
    }
    if (info.State.Running) {
      const ip = Object.values(info.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress;
      if (check.port === undefined) {
        if (Date.now() - started >= (check.settleMs ?? 1000)) return;
      } else if (check.at || ip) {
        const host = check.at?.host ?? ip!;
        const port = check.at?.port ?? check.port;
        const answer = check.path ? await httpStatus(`http://${host}:${port}${check.path}`) : await accepts(host, port, check.at ? 300 : 0);
        if (answer === true || (typeof answer === 'number' && answer >= 200 && answer < 300)) return;
        reason = typeof answer === 'number' ? `GET ${check.path} answered ${answer}` : `nothing accepted connections on port ${check.port}`;
      }
    }
    if (Date.now() > deadline) throw new UnhealthyError(name, reason, await lastOutput(docker, id));
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One check of a container's address: 2xx on `path`, or a connection accepted on `port`. */
export async function probe(host: string, port: number, path?: string, holdMs = 0): Promise<boolean> {
  if (path === undefined) return accepts(host, port, holdMs);
  const status = await httpStatus(`http://${host}:${port}${path}`);
  return typeof status === 'number' && status >= 200 && status < 300;
}

/** A connection accepted on `port` (and, with `holdMs`, not closed by the other end within it). */
function accepts(host: string, port: number, holdMs = 0): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let settled = false;
    const done = (ok: boolean) => { if (settled) return; settled = true; socket.destroy(); resolve(ok); };
    socket.setTimeout(1000 + holdMs, () => done(false));
    socket.once('connect', () => (holdMs > 0 ? setTimeout(() => done(true), holdMs) : done(true)));
    socket.once('end', () => done(false));
    socket.once('close', () => done(false));
    socket.once('error', () => done(false));
  });
}

function httpStatus(url: string): Promise<number | false> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The last lines a container printed (stdout and stderr), for error messages. */
export async function lastOutput(docker: Docker, id: string, lines = 20): Promise<string> {
  try {
    const raw = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
    return demux(raw).trimEnd();
  } catch {
    return '';
  }
}

/** Docker multiplexes a non-TTY container's streams: 8-byte frame headers before each chunk. */
export function demux(raw: Buffer): string {
  let out = '';
  let at = 0;
  while (at + 8 <= raw.length && (raw[at] === 1 || raw[at] === 2 || raw[at] === 0) && raw[at + 1] === 0) {
    const size = raw.readUInt32BE(at + 4);
    out += raw.subarray(at + 8, at + 8 + size).toString('utf8');
    at += 8 + size;
  }
  return at === 0 ? raw.toString('utf8') : out;
}
