// `quarry build` as a user meets it: the example's plan, faults with their places, the
// current state round trip, and bad input.
import test from 'ava';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quarry, quarryProcess, repoRoot } from '../support/cli.js';

const example = 'stacks-example/docsearch';
const golden = join(repoRoot, 'test/cli/golden/docsearch.plan.json');

function copyOfExample(): string {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-build-'));
  cpSync(join(repoRoot, example), join(dir, 'docsearch'), { recursive: true });
  return join(dir, 'docsearch');
}

/**
 * Whether this run may rewrite the golden file: only when asked (UPDATE_GOLDEN) and never
 * under CI (CI set), where a test that wrote its own expectation could not fail.
 */
function mayRewriteGolden(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.UPDATE_GOLDEN) && !env.CI;
}

test('the example\'s plan is the golden one (UPDATE_GOLDEN=1 rewrites it, except under CI, where it always compares)', async (t) => {
  const { code, stdout, stderr } = await quarry(['build', example, '--json']);
  t.is(code, 0, stderr);
  if (mayRewriteGolden(process.env)) writeFileSync(golden, stdout);
  else if (process.env.UPDATE_GOLDEN) t.log('UPDATE_GOLDEN ignored: CI is set, so the golden file is compared, not rewritten');
  t.deepEqual(JSON.parse(stdout), JSON.parse(readFileSync(golden, 'utf8')));
});

test('under CI the golden file is never rewritten, whatever UPDATE_GOLDEN says', (t) => {
  t.false(mayRewriteGolden({ CI: 'true', UPDATE_GOLDEN: '1' }));
  t.false(mayRewriteGolden({ CI: '1' }));
  t.false(mayRewriteGolden({}));
  t.true(mayRewriteGolden({ UPDATE_GOLDEN: '1' }));
});

test('the table names every instruction', async (t) => {
  const { code, stdout } = await quarry(['build', example]);
  t.is(code, 0);
  t.regex(stdout, /^plan for docsearch: 6 instructions$/m);
  t.regex(stdout, /^ENSURE +node store +image quarry\/docsearch-store:[0-9a-f]{12}, 64 MB, port 6379$/m);
  t.regex(stdout, /^DEPLOY +element categorize +class categorizer, 1 × 64 MB \(shard 1\.\.4 by hash:path\)/m);
  t.regex(stdout, /^ROUTE +node web +docsearch\.localhost$/m);
});

test('a plan applied (--write-state) and built again (--current) does nothing; a code change gives one DEPLOY', async (t) => {
  const dir = copyOfExample();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const state = join(dir, '..', 'state.json');
  t.is((await quarry(['build', dir, '--write-state', state])).code, 0);
  const again = await quarry(['build', dir, '--json', '--current', state]);
  t.deepEqual(JSON.parse(again.stdout), []);
  writeFileSync(join(dir, 'web/server.js'), readFileSync(join(dir, 'web/server.js'), 'utf8') + '// v2\n');
  const changed = await quarry(['build', dir, '--json', '--current', state]);
  t.deepEqual(JSON.parse(changed.stdout).map((s: { op: string; node?: string }) => `${s.op} ${s.node}`), ['DEPLOY web']);
});

test('a broken stack: every fault with FILE:LINE:COL under the folder given, exit 1, from the real executable', async (t) => {
  const dir = copyOfExample();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const q = readFileSync(join(dir, 'quarry.yml'), 'utf8');
  writeFileSync(join(dir, 'quarry.yml'), q.replace('port: 8080', 'port: http').replace('domains:', 'domain:'));
  writeFileSync(join(dir, 'topology.yml'), readFileSync(join(dir, 'topology.yml'), 'utf8').replace('index.query', 'index.qeury'));
  const { code, stdout, stderr } = await quarryProcess(['build', 'docsearch'], join(dir, '..'));
  t.is(code, 1);
  t.is(stdout, '');
  t.deepEqual(stderr.trim().split('\n'), [
    "docsearch/quarry.yml:16:11: node 'web': 'port' must be a whole number from 1 to 65535, not \"http\"",
    "docsearch/quarry.yml:17:5: node 'web': unknown key 'domain'; did you mean 'domains'?",
    "docsearch/topology.yml:13:25: element 'index' (class indexer) has no port 'qeury'; did you mean 'query'?",
    '3 errors; nothing was changed',
  ]);
});

test('a --current file that is not what runs names the file and the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-current-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'current.json');
  writeFileSync(file, JSON.stringify({ stack: 'docsearch', units: [{ name: 'web', kind: 'web', image: 'x', digest: 'y', scale: -1 }] }));
  const bad = await quarry(['build', example, '--current', file]);
  t.is(bad.code, 1);
  t.is(bad.stderr, `${file}: 'units[0].scale' must be a whole number 0 or more\n`);
  const missing = await quarry(['build', example, '--current', join(dir, 'nope.json')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /--current .*nope\.json: cannot read it: ENOENT/);
  writeFileSync(file, JSON.stringify({ stack: 'other', units: [] }));
  const other = await quarry(['build', example, '--current', file]);
  t.regex(other.stderr, /describes stack 'other', but this is stack 'docsearch'/);
});

test('usage errors exit 2 and show the usage', async (t) => {
  const flag = await quarry(['build', '--jsn']);
  t.is(flag.code, 2);
  t.regex(flag.stderr, /Unknown option '--jsn'[\s\S]*usage: quarry build \[DIR\]/);
  const unknown = await quarry(['biuld']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command 'biuld'/);
});

test('a folder that does not exist says so', async (t) => {
  const { code, stderr } = await quarry(['build', 'no/such/stack']);
  t.is(code, 1);
  t.is(stderr, 'no/such/stack: no such folder\n');
});

test('a folder without quarry.yml says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-empty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { code, stderr } = await quarry(['build', dir]);
  t.is(code, 1);
  t.regex(stderr, /quarry\.yml:1:1: there is no quarry\.yml at the root of the stack/);
});
