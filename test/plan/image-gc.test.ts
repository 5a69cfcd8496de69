// Which images on an engine can go: a table of (each stack's releases, keep N, what containers
// use, what the engine has) → the tags to remove and why the others stay. Pure.
import test from 'ava';
import {
  buildTag, formatImageGc, imageGc, releaseImages, type ImageGcInput, type ImageKeepReason, type ReleaseImages,
} from '../../plan/index.js';
import { base, compile, stackWith } from '../compiler/fixture.js';

const web = (digest: string) => `quarry/shop-web:${digest}`;
const worker = (digest: string) => `quarry/shop-worker:${digest}`;
/** Release vN of stack shop: web and worker built at digest `w<N>`/`k<N>`. */
const shop = (version: number, extra: Partial<ReleaseImages> = {}): ReleaseImages =>
  ({ version, images: [web(`w${version}`), worker(`k${version}`), ...(extra.images ?? [])], ...(extra.given && { given: extra.given }) });

interface Case {
  name: string;
  releases: ImageGcInput['releases'];
  keep?: number;
  inUse?: string[];
  present: string[];
  registries?: string[];
  remove: string[];
  /** Why the tags not removed stay (those left out of the table are only counted). */
  why?: Record<string, ImageKeepReason>;
}

const cases: Case[] = [
  {
    name: 'the last N releases are kept, older ones go',
    releases: { shop: [1, 2, 3, 4].map((v) => shop(v)) },
    keep: 2,
    present: [web('w1'), worker('k1'), web('w2'), worker('k2'), web('w3'), worker('k3'), web('w4'), worker('k4')],
    remove: [web('w1'), worker('k1'), web('w2'), worker('k2')],
    why: { [web('w3')]: 'kept release', [web('w4')]: 'kept release' },
  },
  {
    name: 'releases in any order: "last" is by version, not by position',
    releases: { shop: [shop(3), shop(1), shop(2)] },
    keep: 1,
    present: [web('w1'), web('w2'), web('w3')],
    remove: [web('w1'), web('w2')],
  },
  {
    name: 'an image an old release shares with a kept one stays (an unchanged unit keeps its tag)',
    releases: { shop: [{ version: 1, images: [web('same'), worker('k1')] }, { version: 2, images: [web('same'), worker('k2')] }] },
    keep: 1,
    present: [web('same'), worker('k1'), worker('k2')],
    remove: [worker('k1')],
    why: { [web('same')]: 'kept release' },
  },
  {
    name: 'fewer releases than N: everything stays',
    releases: { shop: [shop(1), shop(2)] },
    keep: 5,
    present: [web('w1'), web('w2')],
    remove: [],
  },
  {
    name: 'an image a container uses stays, even of an old release (a stopped container, another engine\'s)',
    releases: { shop: [1, 2, 3].map((v) => shop(v)) },
    keep: 1,
    inUse: [web('w1')],
    present: [web('w1'), web('w2'), web('w3')],
    remove: [web('w2')],
    why: { [web('w1')]: 'in use' },
  },
  {
    name: 'base images are never removed, whatever their tag',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 1,
    present: ['quarry/node:20', 'quarry/runtime:latest', 'quarry/runtime:519002858f8b', 'quarry/agent:920784c921a6', 'quarry/server:bookworm', web('w1')],
    remove: [web('w1')],
    why: {
      'quarry/node:20': 'base image', 'quarry/runtime:latest': 'base image', 'quarry/runtime:519002858f8b': 'base image',
      'quarry/agent:920784c921a6': 'base image', 'quarry/server:bookworm': 'base image',
    },
  },
  {
    name: 'other people\'s images stay: another namespace, a registry host, a digest, an untagged image',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 1,
    present: ['postgres:16', 'redis:7', 'acme/shop-web:w1', 'registry.example.com:5000/quarry/shop-web:w1', 'quarry/shop-web@sha256:' + 'a'.repeat(64), '<none>:<none>', web('w1')],
    remove: [web('w1')],
    why: {
      'postgres:16': 'not quarry\'s', 'acme/shop-web:w1': 'not quarry\'s', 'registry.example.com:5000/quarry/shop-web:w1': 'not quarry\'s',
      '<none>:<none>': 'not quarry\'s',
    },
  },
  {
    name: 'a stack with no release record at all is unknown: its images stay (quarry run, records gone)',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 1,
    present: ['quarry/blog-web:0123456789ab', 'quarry/blog-class-mapper:0123456789ab', web('w1')],
    remove: [web('w1')],
    why: { 'quarry/blog-web:0123456789ab': 'unknown stack', 'quarry/blog-class-mapper:0123456789ab': 'unknown stack' },
  },
  {
    name: 'a stack listed with an empty list of releases is unknown too',
    releases: { shop: [] },
    keep: 1,
    present: [web('w1')],
    remove: [],
    why: { [web('w1')]: 'unknown stack' },
  },
  {
    name: 'a stack whose name extends a known one (shop-admin beside shop) is not taken for it',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 1,
    present: ['quarry/shop-admin-web:0123456789ab', web('w1')],
    remove: [web('w1')],
    why: { 'quarry/shop-admin-web:0123456789ab': 'unknown stack' },
  },
  {
    name: 'both stacks known: each keeps its own last N, and neither takes the other\'s images',
    releases: {
      shop: [1, 2].map((v) => shop(v)),
      'shop-admin': [1, 2].map((v) => ({ version: v, images: [`quarry/shop-admin-web:a${v}`] })),
    },
    keep: 1,
    present: ['quarry/shop-admin-web:a1', 'quarry/shop-admin-web:a2', web('w1'), web('w2')],
    remove: ['quarry/shop-admin-web:a1', web('w1')],
    why: { 'quarry/shop-admin-web:a2': 'kept release', [web('w2')]: 'kept release' },
  },
  {
    name: 'a unit no release ever built (a failed first push of it) is not known to be quarry\'s: it stays',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 1,
    present: ['quarry/shop-mailer:0123456789ab'],
    remove: [],
    why: { 'quarry/shop-mailer:0123456789ab': 'unknown stack' },
  },
  {
    name: 'a built image of a failed push of a released unit (no release names it) goes',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 2,
    present: [web('failed'), web('w1'), web('w2')],
    remove: [web('failed')],
  },
  {
    name: 'an image quarry.yml names itself (`image:`) is never removed, even by an old release only',
    releases: {
      shop: [
        shop(1, { images: ['quarry/shop-db:custom'], given: ['quarry/shop-db:custom'] }),
        { version: 2, images: [web('w2'), 'quarry/shop-db:0123456789ab'] },
        { version: 3, images: [web('w3'), 'quarry/shop-db:ba9876543210'] },
      ],
    },
    keep: 1,
    present: ['quarry/shop-db:custom', 'quarry/shop-db:0123456789ab', 'quarry/shop-db:ba9876543210'],
    remove: ['quarry/shop-db:0123456789ab'],
    why: { 'quarry/shop-db:custom': 'given', 'quarry/shop-db:ba9876543210': 'kept release' },
  },
  {
    name: 'a given image of the stack\'s own name that no release built: unknown, kept',
    releases: { shop: [shop(1, { images: ['quarry/shop-db:custom'], given: ['quarry/shop-db:custom'] }), shop(2)] },
    keep: 1,
    present: ['quarry/shop-db:custom'],
    remove: [],
    why: { 'quarry/shop-db:custom': 'unknown stack' },
  },
  {
    name: 'registries given: a server\'s pulled tags are judged by their quarry name',
    releases: { shop: [1, 2, 3].map((v) => shop(v)) },
    keep: 1,
    inUse: ['10.0.0.1:5000/quarry/shop-web:w2'],
    registries: ['10.0.0.1:5000'],
    present: ['10.0.0.1:5000/quarry/shop-web:w1', '10.0.0.1:5000/quarry/shop-web:w2', '10.0.0.1:5000/quarry/shop-web:w3', '10.0.0.1:5000/quarry/node:20', 'other:5000/quarry/shop-web:w1'],
    remove: ['10.0.0.1:5000/quarry/shop-web:w1'],
    why: {
      '10.0.0.1:5000/quarry/shop-web:w2': 'in use', '10.0.0.1:5000/quarry/shop-web:w3': 'kept release',
      '10.0.0.1:5000/quarry/node:20': 'base image', 'other:5000/quarry/shop-web:w1': 'not quarry\'s',
    },
  },
  {
    name: 'a container using the registry name keeps the local name too (and the other way round)',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 1,
    inUse: ['10.0.0.1:5000/quarry/shop-web:w1'],
    registries: ['10.0.0.1:5000'],
    present: [web('w1')],
    remove: [],
    why: { [web('w1')]: 'in use' },
  },
  {
    name: 'a tag listed twice is decided once',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    keep: 1,
    present: [web('w1'), web('w1')],
    remove: [web('w1')],
  },
  {
    name: 'keep 1: only the last release',
    releases: { shop: [1, 2, 3].map((v) => shop(v)) },
    keep: 1,
    present: [web('w1'), web('w2'), web('w3'), worker('k3')],
    remove: [web('w1'), web('w2')],
  },
  {
    name: 'nothing present, nothing to do',
    releases: { shop: [1, 2].map((v) => shop(v)) },
    present: [],
    remove: [],
  },
];

for (const c of cases) {
  test(`imageGc: ${c.name}`, (t) => {
    const decision = imageGc({
      releases: c.releases, keep: c.keep ?? 5, inUse: c.inUse ?? [], present: c.present,
      ...(c.registries && { registries: c.registries }),
    });
    t.deepEqual(decision.remove, c.remove);
    const unique = new Set(c.present);
    t.deepEqual(decision.summary, { removed: c.remove.length, kept: unique.size - c.remove.length });
    t.is(decision.keep.length + decision.remove.length, unique.size);
    const why = Object.fromEntries(decision.keep.map((k) => [k.tag, k.why]));
    for (const [tag, reason] of Object.entries(c.why ?? {})) t.is(why[tag], reason, tag);
  });
}

test('imageGc: keep must be an integer of at least 1', (t) => {
  for (const keep of [0, -1, 1.5, Number.NaN]) {
    t.throws(() => imageGc({ releases: {}, keep, inUse: [], present: [] }), { instanceOf: RangeError, message: /keep must be an integer of at least 1/ }, String(keep));
  }
});

test('releaseImages: a compiled stack\'s images, built ones by buildTag, `image:` ones as given', (t) => {
  const spec = compile(base);
  const images = releaseImages(7, spec);
  t.is(images.version, 7);
  t.deepEqual(images.given, ['postgres:16']);
  t.true(images.images.includes('postgres:16'));
  const built = images.images.filter((i) => i !== 'postgres:16');
  // The web node and one image per element class (three classes), each a buildTag of stack demo.
  t.is(built.length, 4);
  for (const image of built) t.regex(image, /^quarry\/demo-(web|class-[a-z]+):[0-9a-f]{12}$/);
  const webNode = spec.nodes.find((n) => n.name === 'web')!;
  t.true(built.includes(buildTag('demo', 'web', webNode.buildDigest!)));
});

test('releaseImages into imageGc: a code change of web leaves the old web image to collect, nothing else', (t) => {
  const v1 = releaseImages(1, compile(base));
  const v2 = releaseImages(2, compile(stackWith({ 'web/server.js': 'console.log("web v2")\n' })));
  const oldWeb = v1.images.find((i) => i.startsWith('quarry/demo-web:'))!;
  const newWeb = v2.images.find((i) => i.startsWith('quarry/demo-web:'))!;
  t.not(oldWeb, newWeb);
  const present = [...new Set([...v1.images, ...v2.images]), 'quarry/node:20'];
  const decision = imageGc({ releases: { demo: [v1, v2] }, keep: 1, inUse: [], present });
  t.deepEqual(decision.remove, [oldWeb]);
  t.is(formatImageGc(decision.summary), `image gc: 1 removed, ${present.length - 1} kept`);
});
