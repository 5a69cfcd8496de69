// The grid as `quarry grid` and `quarry servers` show it: each server with its slices
// (containers' memory) drawn as bins, memory used and free, its agent and firewall, and
// unreachable or lost servers marked.
import type { GridBody, ServersBody } from '../../hq/index.js';
import { getJson } from './api.js';
import { usePoll } from './poll.js';

const TROUBLE = new Set(['unreachable', 'lost']);

export function GridView({ onError }: { onError: (err: unknown) => void }) {
  const { value, error } = usePoll(async (signal) => {
    const [{ servers }, { grid }] = await Promise.all([getJson<ServersBody>('/v1/servers', signal), getJson<GridBody>('/v1/grid', signal)]);
    return { servers, grid };
  }, 3000, onError);
  return (
    <section aria-labelledby="grid-title">
      <h1 id="grid-title">Grid</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {value === undefined ? <p class="status">Reading the grid…</p> : (
        <>
          <p>{value.servers.length} server{value.servers.length === 1 ? '' : 's'} · autosize {value.grid.autosize ? 'on' : 'off'}, min {value.grid.min}, max {value.grid.max ?? 'none'}</p>
          <div class="servers">
            {value.servers.map((s) => {
              const block = value.grid.servers.find((b) => b.id === s.id);
              const size = block?.size ?? s.memory;
              const trouble = TROUBLE.has(s.state);
              return (
                <article key={s.id} class={`server ${s.state}`} aria-label={`server ${s.id}`} data-server={s.id}>
                  <h2>
                    <span>{s.id}</span>
                    <span class={`badge ${trouble ? 'bad' : s.state === 'active' ? 'good' : ''}`}>{trouble ? s.state.toUpperCase() : s.state}</span>
                  </h2>
                  <div class="bins" role="img" aria-label={`${block?.slices.length ?? 0} slices, ${s.used} of ${size} MB`}>
                    {(block?.slices ?? []).map((slice) => (
                      <div key={slice.id} class="bin" title={`${slice.id}: ${slice.size} MB`} style={{ width: `${(100 * slice.size) / Math.max(1, size)}%` }} />
                    ))}
                  </div>
                  <dl class="facts">
                    <dt>address</dt><dd>{s.address}</dd>
                    <dt>provider</dt><dd>{s.provider}{s.size ? ` (${s.size})` : ''}</dd>
                    <dt>memory</dt><dd>{s.used} MB used, {s.free} MB free of {s.memory} MB</dd>
                    <dt>containers</dt><dd>{s.containers}</dd>
                    <dt>agent</dt><dd class={s.agent ? '' : 'error'}>{s.agent ? 'reporting' : 'not reporting'}</dd>
                    <dt>firewall</dt><dd class={s.firewall === 'failed' ? 'error' : ''}>{s.firewall ?? 'unknown'}</dd>
                  </dl>
                  {block && block.slices.length > 0 && (
                    <details>
                      <summary>{block.slices.length} slices</summary>
                      <ul>{block.slices.map((slice) => <li key={slice.id}>{slice.id}: {slice.size} MB</li>)}</ul>
                    </details>
                  )}
                </article>
              );
            })}
          </div>
          <details>
            <summary>As <code>quarry grid</code> draws it</summary>
            <pre>{value.grid.drawing}</pre>
          </details>
        </>
      )}
    </section>
  );
}
