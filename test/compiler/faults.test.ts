// Each fault class a user can make, with the exact place it is reported at.
import test from 'ava';
import { base, faultsOf, stackWith } from './fixture.js';

const q = base['quarry.yml']!;
const topo = base['topology.yml']!;

interface Case {
  name: string;
  files: Record<string, string | null>;
  /** Each expected fault: `FILE:LINE:COL` and a pattern its message must match. */
  faults: Array<[string, RegExp]>;
}

const cases: Case[] = [
  {
    name: 'YAML syntax error in quarry.yml',
    files: { 'quarry.yml': 'name: demo\nnodes:\n  web: [a, b\n  db: 1\n' },
    faults: [['quarry.yml:4:3', /Flow sequence .* end with a \] \(YAML syntax\)$/]],
  },
  {
    name: 'a key given twice is a syntax error',
    files: { 'quarry.yml': q.replace('name: demo\n', 'name: demo\nname: again\n') },
    faults: [['quarry.yml:2:1', /Map keys must be unique/]],
  },
  {
    name: 'typo in a top-level key',
    files: { 'quarry.yml': q.replace('nodes:', 'nodse:') },
    faults: [
      ['quarry.yml:4:1', /quarry\.yml: unknown key 'nodse'; did you mean 'nodes'\?/],
      // Without its nodes, the web node that a connection names is unknown too: said once, at the connection.
      ['topology.yml:12:5', /unknown element or node 'web'/],
    ],
  },
  {
    name: 'typo in a node key',
    files: { 'quarry.yml': q.replace('    health: /healthz', '    helth: /healthz') },
    faults: [['quarry.yml:14:5', /node 'web': unknown key 'helth'; did you mean 'health'\?/]],
  },
  {
    name: 'a port that is not a number',
    files: { 'quarry.yml': q.replace('port: 8080', 'port: "8080"') },
    faults: [['quarry.yml:12:11', /node 'web': 'port' must be a whole number from 1 to 65535, not "8080"/]],
  },
  {
    name: 'tls other than auto',
    files: { 'quarry.yml': q.replace('    health: /healthz', '    tls: on\n    health: /healthz') },
    faults: [['quarry.yml:14:10', /node 'web': 'tls' can only be 'auto' .*not 'on'; for a certificate of your own, .*quarry certs add/]],
  },
  {
    name: 'tls: auto on a node that is not web',
    files: { 'quarry.yml': q.replace('    port: 5432', '    port: 5432\n    tls: auto') },
    faults: [['quarry.yml:9:5', /node 'db': only web nodes answer HTTPS/]],
  },
  {
    name: 'tls: auto with a wildcard domain',
    files: { 'quarry.yml': q.replace('domains: [demo.example.com]', 'domains: ["*.example.com"]\n    tls: auto') },
    faults: [['quarry.yml:14:5', /'tls: auto' cannot cover a '\*\.' domain/]],
  },
  {
    name: 'a port out of range',
    files: { 'quarry.yml': q.replace('port: 5432', 'port: 70000') },
    faults: [['quarry.yml:8:11', /node 'db': 'port' must be a whole number from 1 to 65535, not 70000/]],
  },
  {
    name: 'a web node without a port',
    files: { 'quarry.yml': q.replace('    port: 8080\n', '') },
    faults: [['quarry.yml:9:3', /node 'web': a web node needs 'port'/]],
  },
  {
    name: 'an image and a build on one node',
    files: { 'quarry.yml': q.replace('    build: ./web\n', '    build: ./web\n    image: nginx:1\n') },
    faults: [['quarry.yml:11:5', /node 'web': has both 'image' and 'build'/]],
  },
  {
    name: 'neither image nor build',
    files: { 'quarry.yml': q.replace('    image: postgres:16\n', '') },
    faults: [['quarry.yml:5:3', /node 'db': needs 'image' .* or 'build'/]],
  },
  {
    name: 'a build folder that does not exist',
    files: { 'quarry.yml': q.replace('build: ./web', 'build: ./site') },
    faults: [['quarry.yml:11:12', /node 'web': build folder '\.\/site' does not exist/]],
  },
  {
    name: 'a build folder without a Dockerfile',
    files: { 'web/Dockerfile': null },
    faults: [['quarry.yml:11:12', /node 'web': build folder '\.\/web' has no Dockerfile/]],
  },
  {
    name: 'a build folder outside the repo',
    files: { 'quarry.yml': q.replace('build: ./web', 'build: ../other') },
    faults: [['quarry.yml:11:12', /must be inside the repo/]],
  },
  {
    name: 'a build folder given as an absolute path',
    files: { 'quarry.yml': q.replace('build: ./web', 'build: /srv/web') },
    faults: [['quarry.yml:11:12', /node 'web': build folder '\/srv\/web' must be relative to the repo's root \(like \.\/web\), not an absolute path/]],
  },
  {
    name: 'a topology file outside the repo',
    files: { 'quarry.yml': q.replace('topology: ./topology.yml', 'topology: ./conf/../../topology.yml') },
    faults: [['quarry.yml:17:11', /topology file '\.\/conf\/\.\.\/\.\.\/topology\.yml' must be inside the repo \(no '\.\.'; like \.\/topology\.yml\)/]],
  },
  {
    name: 'a topology file given as an absolute path',
    files: { 'quarry.yml': q.replace('topology: ./topology.yml', 'topology: /etc/quarry/topology.yml') },
    faults: [['quarry.yml:17:11', /topology file '\/etc\/quarry\/topology\.yml' must be relative to the repo's root .*not an absolute path/]],
  },
  {
    name: 'an element class\'s main outside the repo',
    files: { 'elements/source/element.yml': `${base['elements/source/element.yml']}main: ../../../../etc/passwd\n` },
    faults: [['elements/source/element.yml:3:7', /element class 'source': 'main' '\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd' must be inside elements\/source\/ \(no '\.\.'; like index\.js\)/]],
  },
  {
    name: 'an element class\'s main outside its folder, through a folder of its own',
    files: { 'elements/source/element.yml': `${base['elements/source/element.yml']}main: ./lib/../../sink/index.js\n` },
    faults: [['elements/source/element.yml:3:7', /'main' '\.\/lib\/\.\.\/\.\.\/sink\/index\.js' must be inside elements\/source\//]],
  },
  {
    name: 'an element class\'s main given as an absolute path',
    files: { 'elements/source/element.yml': `${base['elements/source/element.yml']}main: /etc/passwd\n` },
    faults: [['elements/source/element.yml:3:7', /element class 'source': 'main' '\/etc\/passwd' must be relative to elements\/source\/ \(like index\.js\), not an absolute path/]],
  },
  {
    name: 'scale below 0',
    files: { 'quarry.yml': q.replace('    health: /healthz\n', '    health: /healthz\n    scale: -1\n') },
    faults: [['quarry.yml:15:12', /node 'web': 'scale' must be a whole number from 0 to 1000, not -1/]],
  },
  {
    name: 'a service with a scale',
    files: { 'quarry.yml': q.replace('    port: 5432\n', '    port: 5432\n    scale: 2\n') },
    faults: [['quarry.yml:9:12', /a service always runs exactly one container/]],
  },
  {
    name: 'one domain on two nodes',
    files: { 'quarry.yml': q.replace('topology:', '  admin:\n    type: web\n    image: nginx:1\n    port: 80\n    domains: [Demo.Example.com]\ntopology:') },
    faults: [['quarry.yml:21:15', /node 'admin': domain 'demo\.example\.com' is already answered by node 'web' \(line 13\); a domain goes to one node/]],
  },
  {
    name: 'domains on a worker',
    files: { 'quarry.yml': q.replace('    type: web\n', '    type: worker\n').replace('    health: /healthz\n', '') },
    faults: [['quarry.yml:13:5', /node 'web': only web nodes answer domains; this one is a worker/]],
  },
  {
    name: 'an unknown node type',
    files: { 'quarry.yml': q.replace('type: web', 'type: website') },
    faults: [['quarry.yml:10:11', /'type' must be one of service, web, worker, not 'website'/]],
  },
  {
    name: 'env set to a mapping, and a reserved env name',
    files: { 'quarry.yml': q.replace('  MODE: test\n', '  MODE: { a: 1 }\n  QUARRY_X: 1\n') },
    faults: [
      ['quarry.yml:3:9', /env 'MODE' must be text, a number or true\/false, not a mapping/],
      ['quarry.yml:4:3', /names starting with QUARRY_ are set by quarry itself/],
    ],
  },
  {
    name: 'env that quarry sets from a service',
    files: { 'quarry.yml': q.replace('  MODE: test\n', '  DB_HOST: localhost\n') },
    faults: [['quarry.yml:3:3', /env 'DB_HOST' is set by quarry to service 'db''s address/]],
  },
  {
    name: 'a topology file that does not exist',
    files: { 'quarry.yml': q.replace('./topology.yml', './topolgy.yml') },
    faults: [['quarry.yml:17:11', /topology file '\.\/topolgy\.yml' does not exist; did you mean '\.\/topology\.yml'\?/]],
  },
  {
    name: 'an unknown element class',
    files: { 'topology.yml': topo.replace('class: mapper', 'class: maper') },
    faults: [['topology.yml:5:12', /element 'mid': unknown element class 'maper': there is no elements\/maper\/element\.yml; did you mean 'mapper'\?/]],
  },
  {
    name: 'an unknown element in a connection',
    files: { 'topology.yml': topo.replace('  - src.out -> mid.in', '  - scr.out -> mid.in') },
    faults: [['topology.yml:10:5', /unknown element or node 'scr'; did you mean 'src'\?/]],
  },
  {
    name: 'an unknown port',
    files: { 'topology.yml': topo.replace('mid.out -> sink.in', 'mid.outt -> sink.in') },
    faults: [['topology.yml:11:9', /element 'mid' \(class mapper\) has no port 'outt'; did you mean 'out'\?/]],
  },
  {
    name: 'an unknown node port',
    files: { 'topology.yml': topo.replace('web.ask => sink.query', 'web.search => sink.query') },
    faults: [['topology.yml:12:9', /node 'web' has no port 'search' \(its ports: ask\)/]],
  },
  {
    name: 'an in port on the left side',
    files: { 'topology.yml': topo.replace('  - src.out -> mid.in', '  - mid.in -> src.out') },
    faults: [
      ['topology.yml:10:9', /mid\.in is an 'in' port, but the left side of 'mid\.in -> src\.out' must be an 'out' port/],
      ['topology.yml:10:19', /src\.out is an 'out' port, but the right side .* must be an 'in' port/],
    ],
  },
  {
    name: 'a push arrow between query ports',
    files: { 'topology.yml': topo.replace('web.ask => sink.query', 'web.ask -> sink.query') },
    faults: [['topology.yml:12:5', /joins two query ports with '->'; use '=>'/]],
  },
  {
    name: 'a push port joined to a query port',
    files: {
      'elements/sink/element.yml': base['elements/sink/element.yml']!.replace('query: { kind: query', 'query: { kind: push'),
    },
    faults: [['topology.yml:12:21', /sink\.query is a push port, but '=>' joins query ports/]],
  },
  {
    name: 'a field the consumer needs that the producer does not give',
    files: { 'elements/mapper/element.yml': base['elements/mapper/element.yml']!.replace('fields: [id, body, tag]', 'fields: [id, body]') },
    faults: [['topology.yml:11:21', /sink\.in needs field 'tag', which mid\.out does not produce \(it carries 'id' and 'body'\)/]],
  },
  {
    name: 'a shard of a class that is not shardable',
    files: { 'topology.yml': topo.replace('    class: sink\n', '    class: sink\n    scale: 3\n') },
    faults: [['topology.yml:9:5', /element 'sink': class 'sink' is not shardable/]],
  },
  {
    name: 'a hash shard on a field its input does not need',
    files: { 'topology.yml': topo.replace('hash:id', 'hash:tag') },
    faults: [['topology.yml:6:34', /shards by field 'tag', but its port 'in' does not need it/]],
  },
  {
    name: 'scale and shard together; max below min',
    files: { 'topology.yml': topo.replace('{ min: 1, max: 3, by: "hash:id" }', '{ min: 4, max: 2 }\n    scale: 2') },
    faults: [
      ['topology.yml:6:5', /has both 'scale' .* and 'shard'/],
      ['topology.yml:6:27', /shard 'max' \(2\) is below 'min' \(4\)/],
    ],
  },
  {
    name: 'an unknown key in an element class',
    files: { 'elements/sink/element.yml': base['elements/sink/element.yml']! + 'ports_note: x\n' },
    faults: [['elements/sink/element.yml:5:1', /element class 'sink': unknown key 'ports_note'/]],
  },
  {
    name: 'a cycle of query connections',
    files: {
      'quarry.yml': q.replace('      ask: { kind: query, dir: out, fields: [q] }', '      ask: { kind: query, dir: out, fields: [q] }\n      answer: { kind: query, dir: in, fields: [q] }'),
      'elements/sink/element.yml': base['elements/sink/element.yml']!.replace('memory: 256', '  lookup: { kind: query, dir: out, fields: [q] }'),
      'topology.yml': topo + '  - sink.lookup => web.answer\n',
    },
    faults: [['topology.yml:13:5', /query connections form a cycle: (web => sink => web|sink => web => sink); each would wait on an answer that waits on it/]],
  },
  {
    name: 'an element named like a node',
    files: { 'topology.yml': topo.replace('  sink:\n    class: sink', '  web:\n    class: sink').replace('sink.in', 'web.in').replace('sink.query', 'web.query') },
    faults: [['topology.yml:7:3', /element 'web' has the same name as node 'web' \(quarry\.yml:9\)/]],
  },
  {
    name: 'a connection that is not written as one',
    files: { 'topology.yml': topo.replace('  - src.out -> mid.in', '  - src.out to mid.in') },
    faults: [['topology.yml:10:5', /'src\.out to mid\.in': a connection is written 'from\.port -> to\.port'/]],
  },
  {
    name: 'a connection listed twice',
    files: { 'topology.yml': topo + '  - src.out -> mid.in\n' },
    faults: [['topology.yml:13:5', /'src\.out -> mid\.in' is listed twice \(first on line 10\)/]],
  },
  {
    name: 'an element class with a typo and no code',
    files: { 'elements/source/element.yml': 'prots:\n  out: { kind: push, dir: out }\n', 'elements/source/index.js': null },
    faults: [
      ['elements/source/element.yml:1:1', /unknown key 'prots'; did you mean 'ports'\?/],
      ['elements/source/element.yml:1:1', /has no code: add elements\/source\/index\.js/],
      ['topology.yml:10:9', /element 'src' \(class source\) has no port 'out' \(it declares no ports\)/],
    ],
  },
  {
    name: 'a port with a bad kind is reported once, not again at its connections',
    files: { 'elements/source/element.yml': 'ports:\n  out: { kind: pushh, dir: out, fields: [id, body] }\n' },
    faults: [['elements/source/element.yml:2:16', /'kind' must be one of push, query, not 'pushh'; did you mean 'push'\?/]],
  },
  {
    name: 'a YAML error in an element class stops no other check',
    files: { 'elements/sink/element.yml': 'ports: [\n', 'quarry.yml': q.replace('port: 8080', 'port: x') },
    faults: [
      ['elements/sink/element.yml:2:1', /\(YAML syntax\)/],
      ['quarry.yml:12:11', /'port' must be a whole number/],
    ],
  },
  {
    name: 'restart: a negative attempts, an interval that is no duration, a max_delay below the delay',
    files: { 'quarry.yml': q.replace('    health: /healthz\n', '    health: /healthz\n    restart: { attempts: -1, interval: soon, delay: 10s, max_delay: 2s }\n') },
    faults: [
      ['quarry.yml:15:26', /node 'web', restart: 'attempts' must be a whole number from 0 to 1000, not -1/],
      ['quarry.yml:15:40', /node 'web', restart: 'interval' must be a duration such as 30s, 5m or 500ms \(or a number of seconds\), not "soon"/],
      ['quarry.yml:15:69', /node 'web': restart 'max_delay' \(2s\) is below 'delay' \(10s\)/],
    ],
  },
  {
    name: 'restart: a docker restart policy word instead of a mapping',
    files: { 'quarry.yml': q.replace('    port: 5432\n', '    port: 5432\n    restart: always\n') },
    faults: [['quarry.yml:9:14', /node 'db': 'restart' is a mapping such as \{ attempts: 5, interval: 5m, delay: 1s \}, not "always"/]],
  },
  {
    name: 'restart: an interval of 0 and a delay over a day',
    files: { 'quarry.yml': q.replace('    port: 5432\n', '    port: 5432\n    restart:\n      interval: 0\n      delay: 25h\n') },
    faults: [
      ['quarry.yml:10:17', /node 'db', restart: 'interval' must be more than 0 and at most 24h, not 0/],
      ['quarry.yml:11:14', /node 'db', restart: 'delay' must be 0 or more and at most 24h, not "25h"/],
    ],
  },
  {
    name: 'restart: a typo in an element\'s restart key',
    files: { 'topology.yml': topo.replace('    class: sink\n', '    class: sink\n    restart: { attemps: 2 }\n') },
    faults: [['topology.yml:9:16', /element 'sink', restart: unknown key 'attemps'; did you mean 'attempts'\?/]],
  },
  {
    name: 'no quarry.yml',
    files: { 'quarry.yml': null },
    faults: [['quarry.yml:1:1', /there is no quarry\.yml at the root of the stack/]],
  },
];

for (const c of cases) {
  test(c.name, (t) => {
    const faults = faultsOf(stackWith(c.files));
    t.is(faults.length, c.faults.length, `faults were:\n${faults.join('\n')}`);
    c.faults.forEach(([place, pattern], i) => {
      const fault = faults[i] ?? '';
      t.true(fault.startsWith(`${place}: `), `fault ${i} is at ${place}: ${fault}`);
      t.regex(fault.slice(place.length + 2), pattern);
    });
  });
}
