// HQ's healing plan: what it sees of each server → what to do. Pure, a table.
import test from 'ava';
import { healPlan, stackOf, type HealAction, type ServerSight } from '../../plan/index.js';

const up = (id: string, stacks: string[] = []): ServerSight => ({ id, agent: true, stacks });
const cases: { name: string; servers: ServerSight[]; agents?: boolean; actions: HealAction[] }[] = [
  { name: 'every agent holds its lease: nothing', servers: [up('a', ['s']), up('b')], actions: [] },
  { name: 'a lease gone: probe its engine first', servers: [up('a'), { id: 'b', agent: false, stacks: ['s'] }], actions: [{ op: 'probe', server: 'b' }] },
  {
    name: 'lease gone and engine silent: lost, with its stacks once each, sorted',
    servers: [{ id: 'b', agent: false, engine: false, stacks: ['t', 's', 't'] }],
    actions: [{ op: 'lose', server: 'b', stacks: ['s', 't'], reason: "its agent's lease expired and its docker engine does not answer" }],
  },
  { name: 'lease gone but engine answers (the agent died): not lost', servers: [{ id: 'b', agent: false, engine: true, stacks: ['s'] }], actions: [] },
  { name: 'an engine that does not answer while the agent holds its lease: not lost', servers: [{ id: 'b', agent: true, engine: false, stacks: ['s'] }], actions: [] },
  { name: 'no agents on this grid: leases say nothing', agents: false, servers: [{ id: 'b', agent: false, stacks: ['s'] }], actions: [] },
  { name: 'draining with containers: move them', servers: [{ ...up('a', ['t', 's']), draining: { remove: false } }], actions: [{ op: 'drain', server: 'a', stacks: ['s', 't'] }] },
  { name: 'drained empty with --remove: retire', servers: [{ ...up('a'), draining: { remove: true } }], actions: [{ op: 'retire', server: 'a' }] },
  { name: 'drained empty, kept', servers: [{ ...up('a'), draining: { remove: false } }], actions: [{ op: 'drained', server: 'a' }] },
  {
    name: 'a draining server that is lost: loss wins',
    servers: [{ id: 'a', agent: false, engine: false, draining: { remove: true }, stacks: ['s'] }],
    actions: [{ op: 'lose', server: 'a', stacks: ['s'], reason: "its agent's lease expired and its docker engine does not answer" }],
  },
  {
    name: 'several servers: in id order',
    servers: [{ id: 'c', agent: false, stacks: [] }, { ...up('b', ['s']), draining: { remove: false } }],
    actions: [{ op: 'drain', server: 'b', stacks: ['s'] }, { op: 'probe', server: 'c' }],
  },
];

for (const c of cases) {
  test(`healPlan: ${c.name}`, (t) => {
    t.deepEqual(healPlan(c.servers, { agents: c.agents ?? true }), c.actions);
  });
}

test('stackOf: the stack of a container name, dots in the stack kept', (t) => {
  t.is(stackOf('docsearch.web.3'), 'docsearch');
  t.is(stackOf('a.b.web.3'), 'a.b');
  t.is(stackOf('odd'), 'odd');
});
