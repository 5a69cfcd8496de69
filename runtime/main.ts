/**
 * The element launcher: runs one element process.
 *
 *   node --import tsx runtime/main.ts CODE [--wiring FILE|JSON]      (from source)
 *   node dist/runtime/main.js CODE [--wiring FILE|JSON]              (built)
 *
 * CODE is an element class folder (elements/<class>/, its index.ts or index.js) or a code file.
 * The wiring comes from --wiring, QUARRY_WIRING (JSON) or QUARRY_WIRING_FILE. When ready it
 * prints one line `{"quarry":"ready",...}` on stdout; with QUARRY_STATS_MS it prints its counters
 * as `{"quarry":"stats",...}` lines that often. Its control socket answers only requests carrying
 * the secret in QUARRY_CONTROL_KEY (taken out of the process's env once read, so element code
 * and its children do not inherit it); without one it refuses every control request. SIGTERM
 * or SIGINT stop it cleanly (exit 0); element code that throws stops it with exit 1, so its
 * supervisor restarts it.
 */
import { QuarryError } from '../errors/index.js';
import { CONTROL_KEY_ENV } from './control.js';
import { loadElement } from './load.js';
import { startElement } from './runtime.js';
import { readWiring } from './wiring.js';

async function main(argv: string[]): Promise<number> {
  let code: string | undefined;
  let wiringArg: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--wiring') wiringArg = argv[++i];
    else if (arg.startsWith('--wiring=')) wiringArg = arg.slice('--wiring='.length);
    else if (code === undefined) code = arg;
    else throw new QuarryError(`unexpected argument '${arg}'`);
  }
  code ??= process.env.QUARRY_CODE;
  if (code === undefined) throw new QuarryError('usage: main CODE [--wiring FILE|JSON] (or QUARRY_CODE)');
  const wiring = readWiring(process.env, wiringArg);
  const controlKey = process.env[CONTROL_KEY_ENV];
  delete process.env[CONTROL_KEY_ENV];
  const definition = await loadElement(code);
  const rt = await startElement(definition, wiring, controlKey ? { controlKey } : {});
  const line = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  line({ quarry: 'ready', element: rt.element, member: rt.member, incarnation: rt.incarnation, pid: process.pid, endpoints: rt.endpoints() });
  const every = Number(process.env.QUARRY_STATS_MS ?? 0);
  const timer = every > 0 ? setInterval(() => line({ quarry: 'stats', ...rt.stats() }), every) : undefined;
  const stop = () => void rt.stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    await rt.done;
    return 0;
  } finally {
    if (timer !== undefined) clearInterval(timer);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`quarry element: ${err instanceof QuarryError ? err.message : (err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
