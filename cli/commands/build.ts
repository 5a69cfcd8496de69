import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compileFolder } from '../../compiler/index.js';
import { QuarryError, UsageError } from '../../errors/index.js';
import { applyPlan, diffPlan, formatPlan, parseCurrentState, PREVIEW_DIGEST_KEY, type CurrentState } from '../../plan/index.js';
import type { Command } from '../command.js';

export const build: Command = {
  summary: 'compile a stack and print its plan (against an empty grid, or --current)',
  usage: 'quarry build [DIR] [--json] [--current FILE] [--replace SERVICE]... [--write-state FILE]',
  async run(argv, io) {
    const { values, positionals } = parse(argv);
    if (positionals.length > 1) throw new UsageError(`one stack folder at most, not ${positionals.length}`);
    const dirArg = positionals[0] ?? '.';
    const dir = resolve(io.cwd, dirArg);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new QuarryError(`${dirArg}: no such folder`);
    // Faults name files under the folder as the user wrote it, so they can be pasted back.
    const shown = dirArg.replace(/\/+$/, '');
    const stack = compileFolder(dir, { prefix: shown === '.' || shown === '' ? '' : `${shown}/` });

    let current: CurrentState | undefined;
    if (values.current !== undefined) {
      const path = resolve(io.cwd, values.current);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        throw new QuarryError(`--current ${values.current}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      current = parseCurrentState(text, values.current);
      if (current.stack !== stack.name) {
        throw new QuarryError(`--current ${values.current}: describes stack '${current.stack}', but this is stack '${stack.name}'`);
      }
    }

    // A plan that is only shown: its digests are made with the public preview key (its JSON
    // holds the env values in plain anyway), so they match its own --write-state files, not
    // the digests HQ records with its secret key (docs/stacks.md, "Identity").
    const plan = diffPlan(stack, current, { replace: values.replace ?? [], digestKey: PREVIEW_DIGEST_KEY });
    for (const notice of plan.notices) io.stderr.write(`note: ${notice}\n`);
    io.stdout.write(values.json ? `${JSON.stringify(plan.instructions, null, 2)}\n` : formatPlan(stack.name, plan.instructions));
    if (values['write-state'] !== undefined) {
      const next = applyPlan(stack, current, plan.instructions);
      writeFileSync(resolve(io.cwd, values['write-state']), `${JSON.stringify(next, null, 2)}\n`);
    }
    return 0;
  },
};

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        current: { type: 'string' },
        replace: { type: 'string', multiple: true },
        'write-state': { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
