import test from 'ava';
import { LockWaitTimeout } from '../../hq/errors.js';
import { StackLocks } from '../../hq/stack-lock.js';

// StackLocks alone, with short waits: who holds a lock, a wait that gives up naming the holder,
// and a queue that keeps its order for those behind a waiter that left.

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('a free lock is held at once; the holder is named; a release lets the next one in, in order', async (t) => {
  const locks = new StackLocks();
  t.false(locks.busy('shop'));
  const first = await locks.acquire('shop', { holder: 'the push of shop by key alice@laptop' });
  t.true(locks.busy('shop'));
  t.is(locks.holder('shop')?.description, 'the push of shop by key alice@laptop');
  t.is(locks.holder('other'), undefined);

  const order: string[] = [];
  const told: string[] = [];
  const second = locks.acquire('shop', { holder: 'B', waiting: (h) => told.push(`B waits for ${h.description}`) })
    .then((release) => { order.push('B'); return release; });
  const third = locks.acquire('shop', { holder: 'C', waiting: (h) => told.push(`C waits for ${h.description}`) })
    .then((release) => { order.push('C'); return release; });
  await tick();
  t.deepEqual(order, []);
  t.deepEqual(told, ['B waits for the push of shop by key alice@laptop', 'C waits for the push of shop by key alice@laptop']);

  first();
  first(); // a second call does nothing: it must not let C in beside B
  const releaseB = await second;
  await tick();
  t.deepEqual(order, ['B']);
  t.is(locks.holder('shop')?.description, 'B');
  releaseB();
  const releaseC = await third;
  t.deepEqual(order, ['B', 'C']);
  releaseC();
  t.false(locks.busy('shop'));
});

test('a wait that runs out rejects with LockWaitTimeout naming the holder; those behind it keep their turn', async (t) => {
  const locks = new StackLocks();
  const holding = await locks.acquire('shop', { holder: 'the push of shop by key alice@laptop (SHA256:abc) from 10.0.0.5' });
  const started = Date.now();
  const impatient = locks.acquire('shop', { holder: 'B', timeoutMs: 80 });
  let cGot = false;
  const patient = locks.acquire('shop', { holder: 'C' }).then((release) => { cGot = true; return release; });

  const err = await t.throwsAsync(impatient, { instanceOf: LockWaitTimeout });
  t.true(Date.now() - started >= 70, 'not before its time');
  t.is(err?.stackName, 'shop');
  t.is(err?.waitedMs, 80);
  t.is(err?.holder.description, 'the push of shop by key alice@laptop (SHA256:abc) from 10.0.0.5');
  t.regex(err?.message ?? '', /^gave up after waiting 80 ms for shop: the push of shop by key alice@laptop \(SHA256:abc\) from 10\.0\.0\.5 holds its lock \(since \d\d:\d\d:\d\d UTC\)$/);
  t.true(locks.busy('shop'));
  t.false(cGot, 'C still waits behind the holder');

  holding();
  const releaseC = await patient;
  t.true(cGot);
  t.is(locks.holder('shop')?.description, 'C');
  releaseC();
  t.false(locks.busy('shop'), 'the one that gave up left no trace');
});

test('a waiter that times out while the holder changes names the holder of that moment', async (t) => {
  const locks = new StackLocks();
  const a = await locks.acquire('shop', { holder: 'A' });
  const b = locks.acquire('shop', { holder: 'B' });
  const c = locks.acquire('shop', { holder: 'C', timeoutMs: 60 });
  a();
  const releaseB = await b;
  const err = await t.throwsAsync(c, { instanceOf: LockWaitTimeout });
  t.is(err?.holder.description, 'B');
  releaseB();
  t.false(locks.busy('shop'));
});

test('a waiter that is granted the lock in time does not time out later', async (t) => {
  const locks = new StackLocks();
  const a = await locks.acquire('shop', { holder: 'A' });
  const b = locks.acquire('shop', { holder: 'B', timeoutMs: 50 });
  a();
  const releaseB = await b;
  await new Promise((resolve) => setTimeout(resolve, 80));
  t.is(locks.holder('shop')?.description, 'B');
  releaseB();
  t.false(locks.busy('shop'));
});

test('an aborted wait leaves the queue with the signal\'s reason; an abort before asking never queues', async (t) => {
  const locks = new StackLocks();
  const a = await locks.acquire('shop', { holder: 'A' });
  const controller = new AbortController();
  const b = locks.acquire('shop', { holder: 'B', signal: controller.signal });
  const c = locks.acquire('shop', { holder: 'C' });
  controller.abort(new Error('the pusher left'));
  await t.throwsAsync(b, { message: 'the pusher left' });
  a();
  const releaseC = await c;
  t.is(locks.holder('shop')?.description, 'C');
  releaseC();
  t.false(locks.busy('shop'));

  const gone = new AbortController();
  gone.abort(new Error('already gone'));
  await t.throwsAsync(locks.acquire('shop', { signal: gone.signal }), { message: 'already gone' });
  t.false(locks.busy('shop'));
});

test('a waiter whose `waiting` throws, or aborts, is not left in the queue', async (t) => {
  const locks = new StackLocks();
  const a = await locks.acquire('shop', { holder: 'A' });
  await t.throwsAsync(locks.acquire('shop', { waiting: () => { throw new Error('the channel is gone'); } }), { message: 'the channel is gone' });
  const controller = new AbortController();
  await t.throwsAsync(locks.acquire('shop', { signal: controller.signal, waiting: () => controller.abort(new Error('left')) }), { message: 'left' });
  a();
  t.false(locks.busy('shop'));
});

test('stacks do not wait for each other; an unnamed holder is named as another change', async (t) => {
  const locks = new StackLocks();
  const shop = await locks.acquire('shop');
  const blog = await locks.acquire('blog', { timeoutMs: 10 });
  const err = await t.throwsAsync(locks.acquire('shop', { timeoutMs: 10 }), { instanceOf: LockWaitTimeout });
  t.regex(err?.message ?? '', /another change of this stack holds its lock/);
  shop();
  blog();
  t.false(locks.busy('shop') || locks.busy('blog'));
});
