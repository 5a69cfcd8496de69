// A domain answers for one stack: a table of (pushed stack, what other stacks run) → faults.
// Pure: no docker, no etcd, no disk.
import test from 'ava';
import { applyPlan, diffPlan, domainClaimFaults, type CurrentState } from '../../plan/index.js';
import { compile, base } from '../compiler/fixture.js';

/** Any key: these plans are compared only with themselves. */
const KEY = { digestKey: 'a test digest key' };

const spec = compile(base); // its web node `web` answers demo.example.com

/** What runs of stack `name` after pushing the base stack with `domains` on its web node. */
function running(name: string, domains: string[]): CurrentState {
  const other = { ...spec, name, nodes: spec.nodes.map((n) => (n.type === 'web' ? { ...n, domains } : n)) };
  return { ...applyPlan(other, undefined, diffPlan(other, undefined, KEY).instructions), stack: name };
}

const cases: Array<[string, CurrentState[], RegExp[]]> = [
  ['no other stack', [], []],
  ['other stacks on other domains', [running('blog', ['blog.example.com'])], []],
  ['the same stack\'s own release', [running('shop', ['demo.example.com'])], []],
  ['another stack routes it', [running('blog', ['demo.example.com'])],
    [/^domain demo\.example\.com is already routed to stack 'blog' \(web node 'web'\); stack 'shop' \(web node 'web'\) cannot claim it/]],
  ['another stack routes it, spelt in capitals', [running('blog', ['Demo.Example.COM'])], [/stack 'blog'.*stack 'shop'/]],
];

for (const [what, others, expected] of cases) {
  test(`domain claims: ${what}`, (t) => {
    const faults = domainClaimFaults('shop', spec, others);
    t.is(faults.length, expected.length, faults.join('\n'));
    expected.forEach((pattern, i) => t.regex(faults[i]!, pattern));
  });
}
