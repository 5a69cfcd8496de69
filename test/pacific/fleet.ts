import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { ed25519Pair } from '../../hq/keys/key-pair.js';
import { connectSsh, execSsh, type Server } from '../../pacific/index.js';

const run = promisify(execFile);
export const DOCKER = '/usr/bin/docker';

/** A fresh quarry key pair for one test file (OpenSSH text). */
export function quarryKey(): { privateKey: string; publicKey: string } {
  const pair = ed25519Pair('quarry-test');
  return { privateKey: pair.private, publicKey: pair.public };
}

/** A fleet name of its own, so that test files running side by side never see each other's servers. */
export function uniqueFleet(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

export async function docker(args: string[]): Promise<string> {
  const { stdout } = await run(DOCKER, args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Removes every container, volume and the network of a docker-provider fleet, whatever state it is in. */
export async function removeFleet(fleet: string): Promise<void> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=quarry.pacific.fleet=${fleet}`]).catch(() => '')).split('\n').filter(Boolean);
  const volumes = (await docker(['volume', 'ls', '-q', '--filter', `name=quarry-server-${fleet}-`]).catch(() => '')).split('\n').filter(Boolean);
  if (ids.length > 0) await docker(['rm', '-f', ...ids]).catch(() => '');
  if (volumes.length > 0) await docker(['volume', 'rm', '-f', ...volumes]).catch(() => '');
  const networks = (await docker(['network', 'ls', '-q', '--filter', `label=quarry.pacific.fleet=${fleet}`]).catch(() => '')).split('\n').filter(Boolean);
  for (const network of networks) await docker(['network', 'rm', network]).catch(() => '');
}

/** Runs a command on a server over SSH with the quarry key, pinned to the host key it reported. */
export async function onServer(server: Server, privateKey: string, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { client } = await connectSsh({ host: server.ssh.host, port: server.ssh.port, user: server.ssh.user, privateKey, hostKey: server.ssh.hostKey });
  try {
    return await execSsh(client, command);
  } finally {
    client.end();
  }
}
