import test from 'ava';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HomeLayout } from '../../home/index.js';
import { quarry } from '../support/cli.js';
import { makeKey, run, tempDir } from './harness.js';

// `quarry keys add` writes under QUARRY_HOME; each test file runs in its own process.
const dir = tempDir('quarry-keys-');
const home = new HomeLayout(join(dir, 'home'));
process.env.QUARRY_HOME = home.root;
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test.serial('a file that is not a public key is refused with a clear error and changes nothing', async (t) => {
  const file = join(dir, 'notes.txt');
  writeFileSync(file, 'hello, this is not a key\n');
  const r = await quarry(['keys', 'add', file]);
  t.is(r.code, 1);
  t.regex(r.stderr, /notes\.txt: not an OpenSSH public key .*; make one with ssh-keygen -t ed25519 and give the \.pub file/);
  t.false(existsSync(home.authorizedKeys));

  const missing = await quarry(['keys', 'add', join(dir, 'nope.pub')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nope\.pub: cannot read it: ENOENT/);

  const usage = await quarry(['keys', 'remove', file]);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /unknown keys command 'remove'/);
});

test.serial('a private key is refused without printing it', async (t) => {
  const key = await makeKey(dir, 'secret');
  const r = await quarry(['keys', 'add', key]);
  t.is(r.code, 1);
  t.regex(r.stderr, /this is a private key; give its public half/);
  const body = readFileSync(key, 'utf8').split('\n')[1]!;
  t.false(r.stderr.includes(body.slice(0, 20)));
  t.false(r.stdout.includes(body.slice(0, 20)));
});

test.serial('a key added twice is added once, with the fingerprint ssh-keygen gives', async (t) => {
  const key = await makeKey(dir, 'alice');
  const expected = (await run('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(' ')[1]!;
  t.regex(expected, /^SHA256:/);

  const first = await quarry(['keys', 'add', `${key}.pub`]);
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout, `added key ${expected} (alice@test): it may push now\n`);
  const second = await quarry(['keys', 'add', `${key}.pub`]);
  t.is(second.code, 0, second.stderr);
  t.is(second.stdout, `key ${expected} (alice@test) is already authorised; nothing changed\n`);

  const other = await makeKey(dir, 'bob');
  t.is((await quarry(['keys', 'add', `${other}.pub`])).code, 0);

  const lines = readFileSync(home.authorizedKeys, 'utf8').trimEnd().split('\n');
  t.is(lines.length, 2);
  t.is(lines[0], readFileSync(`${key}.pub`, 'utf8').trim());
  t.is(lines.filter((l) => l.includes(readFileSync(`${key}.pub`, 'utf8').split(' ')[1]!)).length, 1);
});
