import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../errors/index.js';
import { Locknet, type InForce } from './applier.js';
import { LocknetInputError } from './errors.js';
import { parseMembers, parsePorts } from './members.js';
import { ruleSet } from './rules.js';

export const LOCKNET_USAGE = 'quarry locknet apply --members FILE [--public PORTS] | quarry locknet show [--json] | quarry locknet flush';

/** Where the command reads and writes: the process's streams, or a test's. */
export interface LocknetIO {
  stdout: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
  cwd?: string;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `3 members (2 IPv4, 1 IPv6), public tcp 22,80, docker-user hooked` */
export function describeInForce(state: InForce): string {
  if (!state.on) return 'off: no quarry rules in force';
  const v4 = state.members.v4.length;
  const v6 = state.members.v6.length;
  const docker = state.hooks.v4.dockerUser ?? state.hooks.v6.dockerUser;
  return `${v4 + v6} member${v4 + v6 === 1 ? '' : 's'} (${v4} IPv4, ${v6} IPv6), public tcp ${state.public.join(',') || 'none'}, ` +
    (docker === null ? 'no docker (inbound rules only)' : docker ? 'docker-user hooked' : 'docker-user NOT hooked');
}

/**
 * `quarry locknet …`, the command a person debugging a server uses (and the agent's image
 * answers too): `apply` puts a membership in force on this host (the network namespace it
 * runs in), `show` says what is in force, `flush` removes quarry's rules and sets. A bad file
 * or port list changes nothing.
 */
export async function runLocknetCommand(argv: string[], io: LocknetIO, locknet = new Locknet()): Promise<number> {
  const [verb, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest, allowPositionals: false, strict: true,
      options: { members: { type: 'string' }, public: { type: 'string' }, json: { type: 'boolean' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values } = parsed;
  const allowed: Record<string, string[]> = { apply: ['members', 'public'], show: ['json'], flush: [] };
  const misplaced = Object.keys(values).find((flag) => allowed[verb ?? '']?.includes(flag) === false);
  if (misplaced !== undefined) throw new UsageError(`locknet ${verb} takes no --${misplaced}`);
  if (verb === 'apply') {
    if (values.members === undefined) throw new UsageError('apply needs --members FILE (a JSON array of {"id", "ip"}, or - for stdin)');
    const source = values.members === '-' ? 'stdin' : values.members;
    let text: string;
    try {
      text = values.members === '-' ? await readAll(io.stdin ?? process.stdin) : await readFile(resolve(io.cwd ?? process.cwd(), values.members), 'utf8');
    } catch (err) {
      throw new LocknetInputError(`${source}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const members = parseMembers(text, source);
    const ports = values.public === undefined ? [22] : parsePorts(values.public, '--public');
    await locknet.apply(ruleSet({ members, publicPorts: ports }));
    io.stdout.write(`locknet: in force: ${describeInForce(await locknet.show())}\n`);
    return 0;
  }
  if (verb === 'show') {
    const state = await locknet.show();
    io.stdout.write(values.json ? `${JSON.stringify(state, null, 2)}\n` : `locknet: ${describeInForce(state)}\n` +
      (state.on ? `members: ${[...state.members.v4, ...state.members.v6].join(' ') || 'none'}\n` : ''));
    return 0;
  }
  if (verb === 'flush') {
    const { removed } = await locknet.flush();
    io.stdout.write(removed ? 'locknet: quarry\'s rules and sets removed; nothing else was touched\n' : 'locknet: nothing of quarry\'s was in force\n');
    return 0;
  }
  throw new UsageError(`${verb === undefined ? 'say what to do' : `unknown locknet command '${verb}'`}: apply, show or flush`);
}
