import test from 'ava';
import {
  NoPeersError,
  QueryFailedError,
  QueryTimeoutError,
  element,
  type Wiring,
} from '../../runtime/index.js';
import { ipc, target, run } from './wiring.js';

function answererWiring(bind: string): Wiring {
  return { element: 'db', ports: { query: { kind: 'query', dir: 'in', bind } } };
}

function askerWiring(endpoints: string[], timeoutMs = 5000): Wiring {
  return { element: 'web', ports: { search: { kind: 'query', dir: 'out', targets: endpoints.length ? [target(endpoints, undefined, 'db', 'query')] : [], timeoutMs } } };
}

test('a query is answered; many are in flight at once', async (t) => {
  const ep = ipc();
  const n = 20;
  let arrived = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const db = await run(t, 
    element({
      async onQuery(_port, request: { x: number }) {
        // Every handler waits until all n queries have arrived: only concurrency gets past this.
        if (++arrived === n) open();
        await gate;
        return { double: request.x * 2 };
      },
    }),
    answererWiring(ep),
  );
  const web = await run(t, element({}), askerWiring([ep]));
  const answers = await Promise.all(Array.from({ length: n }, (_, x) => web.ask('search', { x }, undefined)));
  t.deepEqual(answers, Array.from({ length: n }, (_, x) => ({ double: x * 2 })));
  const stats = web.stats().ports.search!;
  t.is(stats.queries, n);
  t.is(stats.latency.count, n);
  t.is(db.stats().ports.query!.queries, n);
  await Promise.all([web.stop(), db.stop()]);
});

test('a query that gets no answer in time rejects with QueryTimeoutError; later ones still work', async (t) => {
  const ep = ipc();
  const db = await run(t, 
    element({ async onQuery(_p, request: { hang?: boolean }) { if (request.hang) await new Promise(() => {}); return 'ok'; } }),
    answererWiring(ep),
  );
  const web = await run(t, element({}), askerWiring([ep]));
  const err = await t.throwsAsync(web.ask('search', { hang: true }, { timeoutMs: 150 }), { instanceOf: QueryTimeoutError });
  t.is(err?.timeoutMs, 150);
  t.is(await web.ask('search', {}, undefined), 'ok');
  t.is(web.stats().ports.search!.queryTimeouts, 1);
  await Promise.all([web.stop(), db.stop()]);
});

test('a query to an element that is not there times out', async (t) => {
  const web = await run(t, element({}), askerWiring([ipc()], 100));
  await t.throwsAsync(web.ask('search', {}, undefined), { instanceOf: QueryTimeoutError });
  await web.stop();
});

test('a throwing query handler is the asker\'s QueryFailedError', async (t) => {
  const ep = ipc();
  const db = await run(t, element({ onQuery() { throw new Error('no such table'); } }), answererWiring(ep));
  const web = await run(t, element({}), askerWiring([ep]));
  await t.throwsAsync(web.ask('search', {}, undefined), { instanceOf: QueryFailedError, message: /no such table/ });
  t.is(db.stats().ports.query!.queryErrors, 1);
  await Promise.all([web.stop(), db.stop()]);
});

test('a query port without peers rejects with NoPeersError', async (t) => {
  const web = await run(t, element({}), askerWiring([]));
  await t.throwsAsync(web.ask('search', {}, undefined), { instanceOf: NoPeersError });
  await web.stop();
});
