// One stack's page: its containers as `quarry ps` shows them, scale controls, its releases
// with a rollback each, its env's names (never values), and a node's logs as they come.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogLine, PsRow, ReleaseInfo } from '../../hq/index.js';
import { followLogs, getJson, operate, stackPath } from './api.js';
import { usePoll } from './poll.js';

type OnError = (err: unknown) => void;

function Containers({ rows }: { rows: PsRow[] }) {
  return (
    <div class="scroll">
      <table aria-label="containers">
        <thead>
          <tr>{['Container', 'Kind', 'State', 'Health', 'Restarts', 'Release', 'Server', 'Address'].map((h) => <th scope="col" key={h}>{h}</th>)}</tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.container}>
              <td>{r.container}</td>
              <td>{r.kind}</td>
              <td class={`state-${r.state}`}>{r.state}</td>
              <td class={`health-${r.health}`}>{r.health}</td>
              <td>{r.restarts ?? '?'}</td>
              <td>{r.release}</td>
              <td>{r.server}</td>
              <td>{r.address ?? '-'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ScaleForm({ stack, scale, busy, run }: { stack: string; scale: Record<string, number>; busy: boolean; run: (what: string, op: (p: (t: string) => void) => Promise<ReleaseInfo>) => void }) {
  const names = Object.keys(scale).sort();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const changes: Record<string, number> = {};
    for (const name of names) {
      const n = Number((form.elements.namedItem(`scale-${name}`) as HTMLInputElement).value);
      if (n !== scale[name]) changes[name] = n;
    }
    if (Object.keys(changes).length === 0) return;
    const said = Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(' ');
    run(`scale ${said}`, (progress) => operate(`${stackPath(stack)}/scale`, { changes }, progress));
  };
  return (
    <form class="scale-form" onSubmit={submit} aria-label="scale">
      {names.map((name) => (
        <label key={`${name}-${scale[name]}`}>
          {name}
          <input type="number" min={0} step={1} name={`scale-${name}`} defaultValue={String(scale[name])} />
        </label>
      ))}
      <button type="submit" disabled={busy}>Scale</button>
    </form>
  );
}

function Releases({ stack, releases, busy, run }: { stack: string; releases: ReleaseInfo[]; busy: boolean; run: (what: string, op: (p: (t: string) => void) => Promise<ReleaseInfo>) => void }) {
  return (
    <div class="scroll">
      <table aria-label="releases">
        <thead><tr><th scope="col">Release</th><th scope="col">Made</th><th scope="col">Reason</th><th scope="col">What</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
        <tbody>
          {releases.map((r, i) => (
            <tr key={r.version}>
              <td>v{r.version}</td>
              <td>{new Date(r.at).toLocaleString()}</td>
              <td>{r.reason}</td>
              <td>{r.description}</td>
              <td>{i === 0 ? 'current' : (
                <button type="button" class="secondary" disabled={busy}
                  onClick={() => run(`rollback to v${r.version}`, (progress) => operate(`${stackPath(stack)}/rollback`, { version: r.version }, progress))}>
                  Roll back to v{r.version}
                </button>
              )}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const MAX_LOG_LINES = 500;

function Logs({ stack, names, onError }: { stack: string; names: string[]; onError: OnError }) {
  const [name, setName] = useState(names[0] ?? '');
  const [lines, setLines] = useState<LogLine[]>([]);
  const [following, setFollowing] = useState<AbortController | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => () => following?.abort(), [following]);
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [lines]);
  const start = (event: Event) => {
    event.preventDefault();
    following?.abort();
    const stop = new AbortController();
    setLines([]);
    setError(undefined);
    setFollowing(stop);
    let batch: LogLine[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const more = batch;
      batch = [];
      setLines((old) => [...old, ...more].slice(-MAX_LOG_LINES));
    };
    followLogs(stack, name, 100, (line) => {
      batch.push(line);
      timer ??= setTimeout(flush, 100);
    }, stop.signal).catch((err: unknown) => {
      if (stop.signal.aborted) return;
      setError((err as Error).message);
      onError(err);
    }).finally(() => setFollowing((f) => (f === stop ? undefined : f)));
  };
  return (
    <>
      <form class="scale-form" onSubmit={start} aria-label="logs">
        <label>
          Node or element
          <select name="logs-name" value={name} onChange={(e) => setName((e.currentTarget as HTMLSelectElement).value)}>
            {names.map((n) => <option key={n} value={n}>{n}</option>)}
          </select>
        </label>
        <button type="submit">{following ? 'Restart' : 'Follow logs'}</button>
        {following && <button type="button" class="secondary" onClick={() => { following.abort(); setFollowing(undefined); }}>Stop</button>}
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <pre class="logs" ref={pre} tabIndex={0} aria-label={`logs of ${name}`} aria-live="off">
        {lines.length === 0 ? (following ? 'waiting for lines…' : 'choose a node and follow its logs') :
          lines.map((l) => `${l.container} ${l.text}`).join('\n')}
      </pre>
    </>
  );
}

export function StackView({ stack, onError }: { stack: string; onError: OnError }) {
  const ps = usePoll((signal) => getJson<{ containers: PsRow[] }>(`/v1/ps?stack=${encodeURIComponent(stack)}`, signal), 2000, onError, [stack]);
  const releases = usePoll((signal) => getJson<{ releases: ReleaseInfo[] }>(`${stackPath(stack)}/releases`, signal), 5000, onError, [stack]);
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<{ text: string; error: boolean }>({ text: '', error: false });

  const run = (what: string, op: (progress: (text: string) => void) => Promise<ReleaseInfo>) => {
    setBusy(true);
    setStatus({ text: `${what}…`, error: false });
    op((text) => setStatus({ text: `${what}: ${text}`, error: false })).then((release) => {
      setStatus({ text: `${what}: done, v${release.version} is live`, error: false });
    }, (err: unknown) => {
      setStatus({ text: `${what} failed: ${(err as Error).message}`, error: true });
      onError(err);
    }).finally(() => {
      setBusy(false);
      ps.reload();
      releases.reload();
    });
  };

  const latest = releases.value?.releases[0];
  const names = latest ? Object.keys(latest.scale).sort() : [];
  return (
    <section aria-labelledby="stack-title">
      <h1 id="stack-title">{stack}</h1>
      <p><a href={`#/stacks/${encodeURIComponent(stack)}/topology`}>Topology of {stack}</a> · {latest ? `v${latest.version}` : ''} {latest?.urls.map((u) => <a key={u} href={u} rel="noreferrer">{u}</a>)}</p>
      <p class={status.error ? 'error' : 'status'} role="status" aria-live="polite">{status.text}</p>
      <h2>Containers</h2>
      {ps.error && <p class="error" role="alert">{ps.error}</p>}
      {ps.value ? <Containers rows={ps.value.containers} /> : <p class="status">Reading the containers…</p>}
      <h2>Scale</h2>
      {latest && <ScaleForm stack={stack} scale={latest.scale} busy={busy} run={run} />}
      <h2>Releases</h2>
      {releases.error && <p class="error" role="alert">{releases.error}</p>}
      {releases.value && <Releases stack={stack} releases={releases.value.releases} busy={busy} run={run} />}
      <h2>Env</h2>
      {latest && (latest.envKeys.length === 0 ? <p>No env set with <code>quarry env</code>.</p> : (
        <ul class="env-names" aria-label="env names">{[...latest.envKeys].sort().map((k) => <li key={k}>{k}</li>)}</ul>
      ))}
      <h2>Logs</h2>
      {names.length > 0 && <Logs stack={stack} names={names} onError={onError} />}
    </section>
  );
}
