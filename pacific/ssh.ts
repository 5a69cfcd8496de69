import ssh2 from 'ssh2';
import { HostKeyMismatchError, ServerBootError } from './errors.js';
import { hostKeyAlgorithms, hostKeyFingerprint, sameHostKey } from './host-keys.js';
import { messageOf } from './provider.js';

/** What quarry needs to log in to a server as its provider made it. */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** The quarry private key (OpenSSH or PEM text). */
  privateKey: string;
  /**
   * `TYPE BASE64`: refuse any other host key (a HostKeyMismatchError, during the key exchange,
   * before logging in). Null: take the first one shown, and report it.
   */
  hostKey: string | null;
  /** The server's id, for errors; default `user@host:port`. */
  server?: string;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `TYPE BASE64` of a host key blob as ssh2's hostVerifier gets it (the SSH wire form). */
export function hostKeyLine(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  return `${blob.subarray(4, 4 + length).toString('latin1')} ${blob.toString('base64')}`;
}

/**
 * One SSH connection to a server; the caller ends it. Resolves with the host key it showed.
 * With a pinned key only that key's algorithm is asked for, and any other key is refused
 * during the key exchange with a HostKeyMismatchError: quarry's key is never offered to it.
 */
export function connectSsh(target: SshTarget, readyTimeoutMs = 10_000): Promise<{ client: ssh2.Client; hostKey: string }> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let shown = '';
    let refused = false;
    client.once('ready', () => resolve({ client, hostKey: shown }));
    client.once('error', (error) => {
      client.end();
      if (refused && target.hostKey !== null) {
        const address = `${target.user}@${target.host}:${target.port}`;
        reject(new HostKeyMismatchError(target.server ?? address, address, hostKeyFingerprint(target.hostKey), hostKeyFingerprint(shown)));
      } else {
        reject(error);
      }
    });
    const algorithms = hostKeyAlgorithms(target.hostKey);
    client.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: target.privateKey,
      readyTimeout: readyTimeoutMs,
      ...(algorithms && { algorithms: { serverHostKey: algorithms as ssh2.ServerHostKeyAlgorithm[] } }),
      hostVerifier: (blob: Buffer) => {
        shown = hostKeyLine(blob);
        refused = target.hostKey !== null && !sameHostKey(target.hostKey, shown);
        return !refused;
      },
    });
  });
}

/** Runs one command over the connection and collects its output. */
export function execSsh(client: ssh2.Client, command: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) return reject(error);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      channel.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      channel.on('exit', (exitCode: number | null) => { code = exitCode; });
      channel.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

export interface WaitOptions {
  /** The server's id, for messages. */
  server: string;
  timeoutMs: number;
  progress: (message: string) => void;
  /** Tried between attempts; default 500 ms. */
  retryMs?: number;
}

export interface Answered {
  hostKey: string;
  dockerVersion: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the server's sshd lets the quarry key in and its docker engine answers
 * `docker info` over that connection. Throws ServerBootError, naming the last thing that
 * failed, when `timeoutMs` passes first.
 */
export async function waitForServer(target: SshTarget, options: WaitOptions): Promise<Answered> {
  const deadline = Date.now() + options.timeoutMs;
  const retryMs = options.retryMs ?? 500;
  const where = `${target.user}@${target.host}:${target.port}`;
  let last = 'no attempt yet';
  let hostKey = target.hostKey;
  options.progress(`waiting for sshd at ${where}`);
  while (Date.now() < deadline) {
    let connection: Awaited<ReturnType<typeof connectSsh>>;
    try {
      connection = await connectSsh({ ...target, hostKey, server: target.server ?? options.server }, Math.max(1000, Math.min(10_000, deadline - Date.now())));
    } catch (error) {
      // A key other than the pinned one is not a server still booting: refused at once.
      if (error instanceof HostKeyMismatchError) throw error;
      last = `sshd: ${messageOf(error)}`;
      await sleep(retryMs);
      continue;
    }
    const firstSeen = hostKey === null;
    hostKey = connection.hostKey;
    options.progress(`sshd answers at ${where} (host key ${hostKey.split(' ')[0]} ${hostKeyFingerprint(hostKey)}${firstSeen ? ', first seen now' : ', the pinned one'}); waiting for its docker engine`);
    try {
      while (Date.now() < deadline) {
        const result = await execSsh(connection.client, "docker info --format '{{.ServerVersion}}'");
        if (result.code === 0 && result.stdout.trim() !== '') {
          const dockerVersion = result.stdout.trim();
          options.progress(`docker ${dockerVersion} answers on ${options.server}`);
          return { hostKey, dockerVersion };
        }
        last = `docker info: ${(result.stderr || result.stdout).trim().split('\n').at(-1) ?? `exit ${result.code}`}`;
        await sleep(retryMs);
      }
    } catch (error) {
      last = `ssh: ${messageOf(error)}`;
    } finally {
      connection.client.end();
    }
  }
  throw new ServerBootError(options.server, `server ${options.server} did not answer within ${Math.round(options.timeoutMs / 1000)} s at ${where} (last: ${last}); check that the address is reachable and that the quarry key is in ${target.user}'s authorized_keys`);
}
