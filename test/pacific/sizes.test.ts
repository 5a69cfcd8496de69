import test from 'ava';
import { parseSize, resolveSize, sizeForMemory, sizeFromLimits, UnknownSizeError } from '../../pacific/index.js';

const slugs: Array<[string, number, number, number]> = [
  ['s-1vcpu-512mb-10gb', 512, 1, 10],
  ['s-1vcpu-1gb', 1024, 1, 25],
  ['s-2vcpu-4gb', 4096, 2, 80],
  ['c-2', 4096, 2, 25],
  ['s-1vcpu-256mb', 256, 1, 0],
  ['s-2vcpu-4gb-amd', 4096, 2, 0],
  ['s-4vcpu-16gb-320gb-intel', 16384, 4, 320],
];
for (const [slug, memory, cpus, disk] of slugs) {
  test(`the slug ${slug} is ${memory} MB, ${cpus} cpus, ${disk} GB`, (t) => {
    t.deepEqual(parseSize(slug), { slug, memory, cpus, disk });
  });
}

test('a slug that names no size says what one looks like', (t) => {
  for (const slug of ['big', 's-0vcpu-1gb', 's-1vcpu-32mb', 's-1cpu-1gb']) {
    t.throws(() => parseSize(slug), { instanceOf: UnknownSizeError, message: /s-1vcpu-1gb|too small/ }, slug);
  }
});

test('a memory in MB is the smallest standard size with at least that much, fewer cpus first', (t) => {
  t.is(sizeForMemory(1).slug, 's-1vcpu-512mb-10gb');
  t.is(sizeForMemory(512).slug, 's-1vcpu-512mb-10gb');
  t.is(sizeForMemory(513).slug, 's-1vcpu-1gb');
  t.is(sizeForMemory(2000).slug, 's-1vcpu-2gb');
  t.is(sizeForMemory(3000).slug, 's-2vcpu-4gb');
  t.is(resolveSize(700).slug, 's-1vcpu-1gb');
  t.is(resolveSize('s-2vcpu-2gb').memory, 2048);
  t.throws(() => sizeForMemory(1_000_000), { instanceOf: UnknownSizeError, message: /largest is s-8vcpu-16gb/ });
  t.throws(() => sizeForMemory(0), { instanceOf: UnknownSizeError });
});

test('limits read back from a server give its slug again', (t) => {
  t.deepEqual(sizeFromLimits(512, 1), { slug: 's-1vcpu-512mb-10gb', memory: 512, cpus: 1, disk: 0 });
  t.is(sizeFromLimits(2048, 2).slug, 's-2vcpu-2gb');
  t.is(sizeFromLimits(2048, 1).slug, 's-1vcpu-2gb');
  t.is(sizeFromLimits(256, 1).slug, 's-1vcpu-256mb');
  t.is(sizeFromLimits(3072, 3).slug, 's-3vcpu-3gb');
});
