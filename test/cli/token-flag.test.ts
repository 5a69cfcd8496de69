// How the real `quarry` executable is given HQ's API token (issue 20, secrets at rest): a
// process's arguments are in the process list for every user of the machine, so `--token`
// still works but says so on stderr each time; QUARRY_TOKEN, `--token-file FILE` and the
// local HQ's own token file are the ways, and none of them warns.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import { TOKEN_FLAG_WARNING } from '../../cli/client.js';
import { startMemoryApi } from '../hq/api-memory-control.js';
import { makeKey } from '../hq/harness.js';
import { quarryWithEnv } from '../support/cli.js';

const TOKEN = 'token-flag-test-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'quarry-token-flag-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

/** The real executable, with no inherited QUARRY_* and a QUARRY_HOME with no HQ in it unless given. */
function quarry(argv: string[], env: Record<string, string> = {}): Promise<Run> {
  return quarryWithEnv(argv, join(dir, 'no-home'), env);
}

const startHqApi = (t: { teardown(fn: () => Promise<void>): void }) => startMemoryApi(t, dir, TOKEN);

test('--token still works, and warns on stderr that it shows in the process list; the warning never holds the token', async (t) => {
  const { api } = await startHqApi(t);
  const flagged = await quarry(['ps', 'demo', '--hq', api.url, '--token', TOKEN]);
  t.is(flagged.code, 0, flagged.stderr);
  t.regex(flagged.stdout, /^CONTAINER +KIND/);
  t.is(flagged.stderr, TOKEN_FLAG_WARNING);
  t.regex(flagged.stderr, /--token shows in the process list.*QUARRY_TOKEN or --token-file FILE/);
  t.false(flagged.stderr.includes(TOKEN));

  // The same output as without the flag: only the warning differs.
  const plain = await quarry(['ps', 'demo'], { QUARRY_HQ: api.url, QUARRY_TOKEN: TOKEN });
  t.is(flagged.stdout, plain.stdout);

  // A refused --token: the warning, then HQ's refusal naming where the token came from.
  const wrong = await quarry(['ps', '--hq', api.url, '--token', 'not-the-token']);
  t.is(wrong.code, 1);
  t.true(wrong.stderr.startsWith(TOKEN_FLAG_WARNING), wrong.stderr);
  t.regex(wrong.stderr.slice(TOKEN_FLAG_WARNING.length), /^HQ at \S+ refused the API token from --token\. .*give it with QUARRY_TOKEN or --token-file FILE\n$/);

  // Every command that talks to HQ takes it the same way: keys add too.
  const key = await makeKey(mkdtempSync(join(dir, 'keys-')), 'ivy');
  const added = await quarry(['keys', 'add', `${key}.pub`, '--hq', api.url, '--token', TOKEN]);
  t.is(added.code, 0, added.stderr);
  t.is(added.stderr, TOKEN_FLAG_WARNING);
});

test('QUARRY_TOKEN, --token-file and the local HQ\'s token file give the token without a warning', async (t) => {
  const { api } = await startHqApi(t);
  const byEnv = await quarry(['ps', 'demo', '--json'], { QUARRY_HQ: api.url, QUARRY_TOKEN: TOKEN });
  t.is(byEnv.code, 0, byEnv.stderr);
  t.is(byEnv.stderr, '');

  const file = join(dir, 'token');
  writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
  const byFile = await quarry(['ps', 'demo', '--json', '--hq', api.url, '--token-file', file]);
  t.is(byFile.code, 0, byFile.stderr);
  t.is(byFile.stderr, '');
  t.deepEqual(JSON.parse(byFile.stdout), JSON.parse(byEnv.stdout));

  // A token file that is not there is said, with the file's name, and nothing is sent.
  const missing = await quarry(['ps', '--hq', api.url, '--token-file', join(dir, 'nope')]);
  t.is(missing.code, 1);
  t.is(missing.stderr, `--token-file ${join(dir, 'nope')}: cannot read it: ENOENT\n`);

  // On HQ's machine, as HQ's user: hq.json and the token file of the home, no flag at all.
  const home = new HomeLayout(join(dir, 'local-home'));
  home.ensure(home.root);
  writeFileSync(home.hqInfo, JSON.stringify({ pid: process.pid, api: api.url, apiPort: api.port, sshPort: 1, routerPort: 2, push: 'ssh://quarry@127.0.0.1:1/' }));
  writeFileSync(home.token, `${TOKEN}\n`, { mode: 0o600 });
  const local = await quarry(['ps', 'demo', '--json'], { QUARRY_HOME: home.root });
  t.is(local.code, 0, local.stderr);
  t.is(local.stderr, '');
});
