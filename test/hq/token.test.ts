import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HomeLayout } from '../../home/index.js';
import { loadOrCreateToken, tokenMatches } from '../../hq/keys/token.js';
import { TokenFileError } from '../../hq/errors.js';

function home(t: { teardown(fn: () => void): void }): HomeLayout {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new HomeLayout(join(dir, 'home'));
}

test('the first start writes a random token, mode 0600; later starts read the same one', (t) => {
  const h = home(t);
  const token = loadOrCreateToken(h);
  t.regex(token, /^[A-Za-z0-9_-]{43}$/);
  t.is(readFileSync(h.token, 'utf8'), `${token}\n`);
  t.is(statSync(h.token).mode & 0o777, 0o600);
  t.is(loadOrCreateToken(h), token);

  const other = home(t);
  t.not(loadOrCreateToken(other), token);
});

test('a token file others can read is made private again', (t) => {
  const h = home(t);
  const token = loadOrCreateToken(h);
  chmodSync(h.token, 0o644);
  t.is(loadOrCreateToken(h), token);
  t.is(statSync(h.token).mode & 0o777, 0o600);
});

test('a token file that holds no token is refused, naming it, without printing it', (t) => {
  const h = home(t);
  h.ensure(h.root);
  writeFileSync(h.token, 'short secret\n', { mode: 0o600 });
  const err = t.throws(() => loadOrCreateToken(h), { instanceOf: TokenFileError });
  t.is(err?.message, `${h.token} does not hold an API token; delete it and start HQ again to make a new one`);
});

test('tokens compare whole, whatever their lengths', (t) => {
  t.true(tokenMatches('abc', 'abc'));
  t.false(tokenMatches('abd', 'abc'));
  t.false(tokenMatches('ab', 'abc'));
  t.false(tokenMatches('', 'abc'));
  t.false(tokenMatches('abcd', 'abc'));
});
