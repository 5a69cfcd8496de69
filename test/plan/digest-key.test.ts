// A unit's digest is its containers' `quarry.digest` label, which anyone who may `docker
// inspect` reads, and it covers the stack's env: it is keyed (HMAC-SHA256), so that a short
// env value cannot be found from it by trying values (issue 20, secrets at rest).
import { createHmac, randomBytes } from 'node:crypto';
import test from 'ava';
import { dataDigest, keyedDigest, type StackSpec } from '../../compiler/index.js';
import { applyPlan, desiredUnits, diffPlan, PREVIEW_DIGEST_KEY, withEnv } from '../../plan/index.js';
import { base, compile } from '../compiler/fixture.js';

const spec = compile(base);
const keyA = randomBytes(32).toString('hex');
const keyB = randomBytes(32).toString('hex');
const digests = (s: StackSpec, digestKey: string) => Object.fromEntries(desiredUnits(s, { digestKey }).map((u) => [u.name, u.digest]));

test('keyedDigest is HMAC-SHA256 of the canonical data: not the plain digest, another for another key, whatever the order of keys', (t) => {
  const value = { env: { PIN: '1234' }, port: 8080 };
  t.is(keyedDigest(keyA, value), createHmac('sha256', keyA).update('{"env":{"PIN":"1234"},"port":8080}').digest('hex'));
  t.is(keyedDigest(keyA, { port: 8080, env: { PIN: '1234' } }), keyedDigest(keyA, value));
  t.not(keyedDigest(keyA, value), dataDigest(value));
  t.not(keyedDigest(keyA, value), keyedDigest(keyB, value));
  t.throws(() => keyedDigest('', value), { instanceOf: RangeError });
});

test('desiredUnits: the same key gives the same digests; another key, other digests for every node and element; a service\'s does not depend on it', (t) => {
  t.deepEqual(digests(spec, keyA), digests(spec, keyA));
  const a = digests(spec, keyA);
  const b = digests(spec, keyB);
  for (const name of ['web', 'src', 'mid', 'sink']) t.not(a[name], b[name], `${name}: its digest covers the env, so it is keyed`);
  // A service gets no env: its digest stays the plain digest of its definition, so a new key
  // never makes it look changed (a push never restarts a service).
  t.is(a.db, b.db);
  t.throws(() => desiredUnits(spec, { digestKey: '' }), { instanceOf: RangeError });
  t.throws(() => desiredUnits(spec, undefined as unknown as { digestKey: string }), { instanceOf: RangeError });
});

test('a label cannot be matched by trying env values without the key (the plain digest it replaces could)', (t) => {
  const pin = String(Math.floor(Math.random() * 10_000)).padStart(4, '0');
  const secret = withEnv(spec, { PIN: pin });
  const label = desiredUnits(secret, { digestKey: keyA }).find((u) => u.name === 'web')!.digest;

  // What someone who reads the labels and knows quarry.yml can put together: the web node's
  // definition with every part but the env value, as desiredUnits makes it.
  const web = secret.nodes.find((n) => n.name === 'web')!;
  const unit = desiredUnits(secret, { digestKey: keyA }).find((u) => u.name === 'web')!;
  const identity = (value: string) => ({
    kind: 'web', image: unit.image, command: web.command, port: web.port, health: web.health, memory: web.memory,
    env: { ...spec.env, PIN: value }, ports: web.ports,
    wiring: secret.connections.filter((c) => c.from.name === 'web' || c.to.name === 'web'), restart: undefined,
  });
  t.is(keyedDigest(keyA, identity(pin)), label, 'the definition is put together right: with the key, it gives the label');

  const guesses = Array.from({ length: 10_000 }, (_, i) => String(i).padStart(4, '0'));
  // The plain digest (before keys) gave the value away at once.
  t.is(guesses.find((g) => dataDigest(identity(g)) === dataDigest(identity(pin))), pin);
  // The keyed one gives nothing: neither the plain digest nor the public preview key matches any guess.
  t.is(guesses.find((g) => dataDigest(identity(g)) === label), undefined);
  t.is(guesses.find((g) => keyedDigest(PREVIEW_DIGEST_KEY, identity(g)) === label), undefined);
});

test('diffPlan: what was recorded under another key (or none) redeploys every node and element once, with no service notice; then nothing', (t) => {
  const running = applyPlan(spec, undefined, diffPlan(spec, undefined, { digestKey: keyA }).instructions);
  t.deepEqual(diffPlan(spec, running, { digestKey: keyA }), { stack: 'demo', instructions: [], notices: [] });

  const rekeyed = diffPlan(spec, running, { digestKey: keyB });
  t.deepEqual(rekeyed.instructions.map((s) => `${s.op} ${s.node ?? s.element}`), ['DEPLOY sink', 'DEPLOY mid', 'DEPLOY src', 'DEPLOY web']);
  t.deepEqual(rekeyed.notices, [], 'the service db is not "changed"');
  const after = applyPlan(spec, running, rekeyed.instructions);
  t.deepEqual(diffPlan(spec, after, { digestKey: keyB }).instructions, []);

  // An env change is still a change, under the same key.
  t.deepEqual(diffPlan(withEnv(spec, { PIN: '1' }), after, { digestKey: keyB }).instructions.map((s) => s.op), ['DEPLOY', 'DEPLOY', 'DEPLOY', 'DEPLOY']);
});
