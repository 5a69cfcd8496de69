import { QuarryError, UsageError } from '../../errors/index.js';
import { clientFor, parseHqArgs, printProgress, releasedLine } from '../client.js';
import type { Command } from '../command.js';

/**
 * `quarry env STACK …`. Values are secrets (database passwords, API keys): a listing shows
 * the names and hides the values, so that a shared terminal or a screen share does not leak
 * them; `--reveal` shows them, and `get KEY` prints one value alone (for `$(…)`). `set
 * --stdin` takes `KEY=VALUE` lines from standard input, so that values need not be arguments,
 * which every user of the machine can read in the process list while the command runs.
 */
export const env: Command = {
  summary: "a stack's env: list (values hidden), get KEY, set K=V... (or set --stdin) unset K... (a change makes a release)",
  usage: 'quarry env STACK [--reveal] [--json] | quarry env STACK get KEY | quarry env STACK [set K=V... | set --stdin] [unset K...] [--json]  [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' }, reveal: { type: 'boolean' }, stdin: { type: 'boolean' } });
    const [stack, verb, ...rest] = positionals;
    if (!stack) throw new UsageError('name the stack');
    if (values.stdin && verb !== 'set' && !rest.includes('set')) throw new UsageError('--stdin goes with set: quarry env STACK set --stdin < FILE');
    const client = clientFor(values, io);

    if (verb === undefined) {
      const current = await client.env(stack);
      const keys = Object.keys(current).sort();
      if (values.json) {
        io.stdout.write(`${JSON.stringify(values.reveal ? Object.fromEntries(keys.map((k) => [k, current[k]])) : keys, null, 2)}\n`);
        return 0;
      }
      if (keys.length === 0) {
        io.stderr.write(`${stack} has no env set with quarry env\n`);
        return 0;
      }
      const width = Math.max(...keys.map((k) => k.length));
      for (const key of keys) io.stdout.write(`${key.padEnd(width)}  ${values.reveal ? current[key] : '********'}\n`);
      if (!values.reveal) io.stderr.write(`values hidden: show them with --reveal, or one with quarry env ${stack} get KEY\n`);
      return 0;
    }

    if (verb === 'get') {
      const [key, ...more] = rest;
      if (!key || more.length > 0) throw new UsageError('get one key: quarry env STACK get KEY');
      const current = await client.env(stack);
      if (!Object.hasOwn(current, key)) throw new QuarryError(`${stack} has no env key '${key}' (see quarry env ${stack})`);
      io.stdout.write(`${current[key]}\n`);
      return 0;
    }

    const set: Record<string, string> = {};
    const unset: string[] = [];
    let mode: 'set' | 'unset' | undefined;
    for (const word of [verb, ...rest]) {
      if (word === 'set' || word === 'unset') {
        mode = word;
        continue;
      }
      if (mode === undefined) throw new UsageError(`unknown env command '${word}': use get, set or unset`);
      if (mode === 'set') {
        const at = word.indexOf('=');
        // Name the key only: the value is a secret.
        if (at <= 0) throw new UsageError(`'${at < 0 ? word : '=…'}' is not KEY=VALUE`);
        set[word.slice(0, at)] = word.slice(at + 1);
      } else {
        if (word.includes('=')) throw new UsageError(`unset takes keys, not KEY=VALUE ('${word.slice(0, word.indexOf('='))}')`);
        unset.push(word);
      }
    }
    if (values.stdin) {
      for (const [key, value] of Object.entries(envLines(await readAll(io.stdin)))) {
        if (Object.hasOwn(set, key)) throw new UsageError(`${key} is given twice`);
        set[key] = value;
      }
    }
    if (Object.keys(set).length === 0 && unset.length === 0) throw new UsageError(`say what to ${mode ?? 'set'}`);
    const release = await client.setEnv(stack, { set, unset }, printProgress(io, values.json === true));
    io.stdout.write(values.json ? `${JSON.stringify(release, null, 2)}\n` : releasedLine(release));
    return 0;
  },
};

/**
 * `KEY=VALUE` lines (an env file): the value is the rest of the line after the first `=`, as
 * it is (no quotes, no expansion; a line's `\r` dropped); blank lines and `#` comments are
 * skipped. A line that is not one names its number only: it may hold a secret.
 */
export function envLines(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const at = line.indexOf('=');
    if (at <= 0) throw new UsageError(`standard input, line ${i + 1}: not KEY=VALUE`);
    const key = line.slice(0, at);
    if (Object.hasOwn(env, key)) throw new UsageError(`standard input, line ${i + 1}: ${key} is given twice`);
    env[key] = line.slice(at + 1);
  });
  return env;
}

async function readAll(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  if (!stream) throw new UsageError('--stdin: there is no standard input to read');
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
