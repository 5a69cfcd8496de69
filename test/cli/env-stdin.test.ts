// `quarry env STACK set --stdin`: env values given on standard input, not as arguments, which
// every user of the machine can read in the process list while the command runs (issue 20,
// secrets at rest). The real executable against HQ's API over MemoryControl.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { envLines } from '../../cli/commands/env.js';
import { startMemoryApi } from '../hq/api-memory-control.js';
import { quarryWithEnv } from '../support/cli.js';

const TOKEN = 'env-stdin-test-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'quarry-env-stdin-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** The real executable with `input` on its standard input. */
function quarry(argv: string[], env: Record<string, string>, input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return quarryWithEnv(argv, join(dir, 'no-home'), env, input);
}

test('envLines: the rest of the line after the first = as it is; blanks, comments and \\r skipped; a bad line named by number only', (t) => {
  t.deepEqual(envLines('# prod\nDATABASE_URL=postgres://u:p=w@db/x\r\n\nEMPTY=\n  # more\nSPACED= a b \n'), {
    DATABASE_URL: 'postgres://u:p=w@db/x', EMPTY: '', SPACED: ' a b ',
  });
  t.throws(() => envLines('A=1\nhunter2\n'), { message: 'standard input, line 2: not KEY=VALUE' });
  t.throws(() => envLines('A=1\nA=2\n'), { message: 'standard input, line 2: A is given twice' });
});

test('set --stdin makes one release with the values read, none of them in the arguments; it goes with set only', async (t) => {
  const { control, hqEnv } = await startMemoryApi(t, dir, TOKEN);

  const set = await quarry(['env', 'empty', 'set', 'MODE=fast', '--stdin'], hqEnv, 'DATABASE_URL=postgres://u:pw@db/x\nPIN=1234\n');
  t.is(set.code, 0, set.stderr);
  t.is(set.stdout, '-----> Setting env of empty\nempty v2 released: env set MODE, set DATABASE_URL, set PIN\n');
  t.deepEqual(await control.env('empty'), { MODE: 'fast', DATABASE_URL: 'postgres://u:pw@db/x', PIN: '1234' });

  const twice = await quarry(['env', 'empty', 'set', 'PIN=1', '--stdin'], hqEnv, 'PIN=2\n');
  t.is(twice.code, 2);
  t.regex(twice.stderr, /PIN is given twice/);
  t.false(twice.stderr.includes('=2'));

  const bad = await quarry(['env', 'empty', 'set', '--stdin'], hqEnv, 'secret-without-a-key\n');
  t.is(bad.code, 2);
  t.regex(bad.stderr, /standard input, line 1: not KEY=VALUE/);
  t.false(bad.stderr.includes('secret-without-a-key'));

  const alone = await quarry(['env', 'empty', '--stdin'], hqEnv, 'A=1\n');
  t.is(alone.code, 2);
  t.regex(alone.stderr, /--stdin goes with set/);
  t.deepEqual(Object.keys(await control.env('empty')).sort(), ['DATABASE_URL', 'MODE', 'PIN'], 'nothing changed by the refused ones');
});
