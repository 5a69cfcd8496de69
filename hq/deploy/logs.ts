import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { LogLine, LogOptions } from '../control.js';
import { BadRequestError } from '../errors.js';
import type { ControlParts } from './context.js';

/**
 * The output of a stack's containers (of one node or element, with `name`), each container's
 * lines oldest first; a name the stack has no container of and does not know is refused.
 */
export async function stackLogs(
  parts: ControlParts, stack: string, name: string | undefined, options: LogOptions, write: (line: LogLine) => void, signal: AbortSignal,
): Promise<void> {
  const { cluster, store } = parts;
  store.check(stack);
  const containers = (await cluster.list(stack, name)).filter((c) => c.unit !== '');
  if (name !== undefined && containers.length === 0) {
    const spec = store.latest(stack)?.spec;
    const known = spec && (spec.nodes.some((n) => n.name === name) || spec.elements.some((e) => e.name === name));
    if (!known) throw new BadRequestError(`no node or element '${name}' in ${stack}`);
  }
  await Promise.all(containers.map((c) => containerLogs(cluster.engine(c.server), c.id, c.name, options, write, signal)));
}

/**
 * A container's output as lines, oldest first; with `follow`, keeps reading until `signal`
 * aborts. Docker's log stream multiplexes stdout and stderr with a frame header per chunk.
 */
export async function containerLogs(
  docker: Docker, id: string, container: string, options: LogOptions, write: (line: LogLine) => void, signal: AbortSignal,
): Promise<void> {
  const base = { stdout: true, stderr: true, timestamps: true, ...(options.tail !== undefined && { tail: options.tail }) };
  const emit = (stream: LogLine['stream']) => lineSplitter((raw) => {
    const space = raw.indexOf(' ');
    const time = space > 0 ? raw.slice(0, space) : '';
    write({ container, stream, time, text: space > 0 ? raw.slice(space + 1) : raw });
  });
  if (!options.follow) {
    const raw = (await docker.getContainer(id).logs({ ...base, follow: false })) as unknown as Buffer;
    const out = emit('stdout');
    const err = emit('stderr');
    for (const frame of frames(raw)) (frame.stream === 'stderr' ? err : out).push(frame.text);
    out.end();
    err.end();
    return;
  }
  const stream = (await docker.getContainer(id).logs({ ...base, follow: true })) as unknown as NodeJS.ReadableStream & { destroy(): void };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out = emit('stdout');
  const err = emit('stderr');
  stdout.on('data', (b: Buffer) => out.push(b.toString('utf8')));
  stderr.on('data', (b: Buffer) => err.push(b.toString('utf8')));
  docker.modem.demuxStream(stream, stdout, stderr);
  await new Promise<void>((resolve) => {
    const done = () => { out.end(); err.end(); resolve(); };
    if (signal.aborted) { stream.destroy(); done(); return; }
    signal.addEventListener('abort', () => stream.destroy(), { once: true });
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

function lineSplitter(line: (text: string) => void): { push(chunk: string): void; end(): void } {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk;
      let at: number;
      while ((at = rest.indexOf('\n')) >= 0) {
        line(rest.slice(0, at).replace(/\r$/, ''));
        rest = rest.slice(at + 1);
      }
    },
    end() {
      if (rest !== '') line(rest);
      rest = '';
    },
  };
}

function* frames(raw: Buffer): Generator<{ stream: LogLine['stream']; text: string }> {
  let at = 0;
  while (at + 8 <= raw.length && (raw[at] === 1 || raw[at] === 2) && raw[at + 1] === 0) {
    const size = raw.readUInt32BE(at + 4);
    yield { stream: raw[at] === 2 ? 'stderr' : 'stdout', text: raw.subarray(at + 8, at + 8 + size).toString('utf8') };
    at += 8 + size;
  }
  if (at === 0 && raw.length > 0) yield { stream: 'stdout', text: raw.toString('utf8') };
}
