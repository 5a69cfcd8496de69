// Every stack HQ has, each a link (its text the stack's name) to its page, with its containers counted.
import type { PsRow } from '../../hq/index.js';
import { getJson } from './api.js';
import { usePoll } from './poll.js';

export function StacksView({ onError }: { onError: (err: unknown) => void }) {
  const { value, error } = usePoll(async (signal) => {
    const [{ stacks }, { containers }] = await Promise.all([
      getJson<{ stacks: string[] }>('/v1/stacks', signal), getJson<{ containers: PsRow[] }>('/v1/ps', signal),
    ]);
    return { stacks, containers };
  }, 3000, onError);
  return (
    <section aria-labelledby="stacks-title">
      <h1 id="stacks-title">Stacks</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {value === undefined ? <p class="status">Reading the stacks…</p> : value.stacks.length === 0 ? (
        <p>No stack yet: push one with <code>git push ssh://quarry@HQ:PORT/NAME main</code>.</p>
      ) : (
        <table>
          <thead><tr><th scope="col">Stack</th><th scope="col">Containers</th><th scope="col">Running</th><th scope="col">Topology</th></tr></thead>
          <tbody>
            {value.stacks.map((stack) => {
              const mine = value.containers.filter((c) => c.stack === stack);
              return (
                <tr key={stack}>
                  <td><a href={`#/stacks/${encodeURIComponent(stack)}`}>{stack}</a></td>
                  <td>{mine.length}</td>
                  <td>{mine.filter((c) => c.state === 'running').length}</td>
                  <td><a href={`#/stacks/${encodeURIComponent(stack)}/topology`} aria-label={`topology of ${stack}`}>graph</a></td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
