// The stack's dataflow, live: elements and connections as a graph laid out by elkjs, each
// connection with its rate and queue fill in NiFi's colours, each element with its
// instances and busy fraction; figures from `GET /v1/stacks/:stack/top/events`, each second.
import { useEffect, useState } from 'preact/hooks';
import type { ApiErrorBody, TopBody, TopConnection, TopElement, TopView } from '../../hq/index.js';
import { session, SessionEndedError, stackPath } from './api.js';
import { BOX, edgeId, layOut, midpoint, structureKey, type Layout } from './layout.js';

const rate = (r: number | null) => (r === null ? '–' : r >= 100 ? `${Math.round(r)}/s` : `${r.toFixed(1)}/s`);
const percent = (f: number | null) => (f === null ? '–' : `${Math.round(f * 100)}%`);
const levelClass = (c: TopConnection) => `level-${c.level ?? 'none'}`;
const queue = (c: TopConnection) => (c.queued === null ? '–' : c.queueLimit === null ? `${c.queued}` : `${c.queued}/${c.queueLimit}`);
const running = (e: TopElement) => e.instances.filter((i) => !i.stale).length;

function Graph({ view, layout }: { view: TopView; layout: Layout }) {
  const elements = new Map(view.elements.map((e) => [e.name, e]));
  const connections = new Map(view.connections.map((c) => [edgeId(c), c]));
  return (
    <div class="graph">
      <svg width={layout.width} height={layout.height} viewBox={`0 0 ${layout.width} ${layout.height}`} role="img" aria-label={`topology of ${view.stack}`}>
        <defs>
          {['low', 'mid', 'high', 'none'].map((l) => (
            <marker key={l} id={`arrow-${l}`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class={`level-${l}`} />
            </marker>
          ))}
        </defs>
        {layout.edges.map((e) => {
          const c = connections.get(e.id);
          if (!c) return null;
          const mid = midpoint(e.points);
          const level = c.level ?? 'none';
          return (
            <g key={e.id} class={`edge ${c.kind} ${levelClass(c)}`} data-connection={e.id}>
              <path d={e.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x},${p.y}`).join(' ')} class={levelClass(c)} marker-end={`url(#arrow-${level})`} />
              <text class="label" x={mid.x} y={mid.y - 8} text-anchor="middle">{rate(c.rate)}{c.backpressure ? ' · held back' : ''}</text>
              <text x={mid.x} y={mid.y + 16} text-anchor="middle">queue {queue(c)} ({percent(c.fill)})</text>
            </g>
          );
        })}
        {layout.boxes.map((b) => {
          const e = elements.get(b.name);
          const busy = e?.busy ?? null;
          return (
            <g key={b.name} class={`element${b.isElement ? '' : ' node'}`} transform={`translate(${b.x},${b.y})`} data-element={b.name}>
              <rect class="box" width={BOX.width} height={BOX.height} rx="6" />
              <text x="10" y="18" font-weight="700">{b.name}</text>
              {e ? (
                <>
                  <text x="10" y="35">{e.class} · {running(e)}/{e.scale} instances</text>
                  <text x="10" y="52">busy {percent(busy)} · {rate(e.rate)}</text>
                  <rect class="busy-ground" x="10" y="61" width={BOX.width - 20} height="4" />
                  <rect class="busy" x="10" y="61" width={(BOX.width - 20) * Math.min(1, Math.max(0, busy ?? 0))} height="4" />
                </>
              ) : <text x="10" y="40">node</text>}
            </g>
          );
        })}
      </svg>
    </div>
  );
}

function Tables({ view }: { view: TopView }) {
  return (
    <>
      <h2>Connections</h2>
      <div class="scroll">
        <table aria-label="connections">
          <thead><tr><th scope="col">Connection</th><th scope="col">Kind</th><th scope="col">Rate</th><th scope="col">Queue</th><th scope="col">Fill</th><th scope="col">Back-pressure</th></tr></thead>
          <tbody>
            {view.connections.map((c) => (
              <tr key={edgeId(c)} data-connection={edgeId(c)}>
                <td>{c.from.name}.{c.from.port} → {c.to.name}.{c.to.port}</td>
                <td>{c.kind}</td>
                <td class="rate">{rate(c.rate)}{c.stale ? ' (stale)' : ''}</td>
                <td>{queue(c)}</td>
                <td><span class="fill" aria-hidden="true"><span class={levelClass(c)} style={{ width: `${Math.round((c.fill ?? 0) * 100)}%` }} /></span> {percent(c.fill)} {c.level ?? ''}</td>
                <td>{c.backpressure ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Elements</h2>
      <div class="scroll">
        <table aria-label="elements">
          <thead><tr><th scope="col">Element</th><th scope="col">Class</th><th scope="col">Instances</th><th scope="col">Rate</th><th scope="col">Busy</th></tr></thead>
          <tbody>
            {view.elements.map((e) => (
              <tr key={e.name} data-element={e.name}>
                <td>{e.name}</td>
                <td>{e.class}</td>
                <td>{running(e)}/{e.scale}</td>
                <td>{rate(e.rate)}{e.stale ? ' (stale)' : ''}</td>
                <td>{percent(e.busy)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function TopologyView({ stack, onError }: { stack: string; onError: (err: unknown) => void }) {
  const [view, setView] = useState<TopView | undefined>(undefined);
  const [layout, setLayout] = useState<Layout | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  useEffect(() => {
    const events = new EventSource(`${stackPath(stack)}/top/events`);
    events.addEventListener('top', (event) => {
      setView((JSON.parse((event as MessageEvent<string>).data) as TopBody).top);
      setError(undefined);
    });
    events.addEventListener('failed', (event) => {
      setError((JSON.parse((event as MessageEvent<string>).data) as ApiErrorBody).error.message);
      events.close();
    });
    events.addEventListener('error', () => {
      // EventSource tries again by itself; a session that ended brings the login back.
      if (events.readyState === EventSource.CLOSED) {
        session().then((yes) => {
          if (!yes) onError(new SessionEndedError('session ended'));
          else setError(`HQ does not send the figures of ${stack} (is it a stack of this HQ?)`);
        }, onError);
      }
    });
    return () => events.close();
  }, [stack]);

  useEffect(() => {
    if (view === undefined || (layout && layout.key === structureKey(view))) return;
    let current = true;
    layOut(view).then((l) => { if (current) setLayout(l); }, (err: unknown) => setError(`the graph could not be laid out: ${(err as Error).message}`));
    return () => { current = false; };
  }, [view && structureKey(view)]);

  return (
    <section aria-labelledby="topology-title">
      <h1 id="topology-title">{stack}: topology</h1>
      <p><a href={`#/stacks/${encodeURIComponent(stack)}`}>Containers and releases of {stack}</a></p>
      {error && <p class="error" role="alert">{error}</p>}
      {view && (
        <p class="status" aria-live="off">
          {view.release} · figures of {new Date(view.at).toLocaleTimeString()}{view.unavailable ? ` · ${view.unavailable}` : ''}
        </p>
      )}
      <div class="legend" aria-label="queue fill colours">
        <span class="level-low">■ under 60 %</span><span class="level-mid">■ 60–85 %</span><span class="level-high">■ over 85 %</span><span class="level-none">■ not known</span>
      </div>
      {view === undefined ? <p class="status">Waiting for the figures…</p> : (
        <>
          {layout ? <Graph view={view} layout={layout} /> : <p class="status">Laying out the graph…</p>}
          <Tables view={view} />
        </>
      )}
    </section>
  );
}
