// The dashboard's shell: the session check, the login, the header and the views by the
// location's hash (#/, #/stacks/NAME, #/stacks/NAME/topology, #/grid).
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { login, logout, session, SessionEndedError } from './api.js';
import { GridView } from './grid.js';
import { StackView } from './stack.js';
import { StacksView } from './stacks.js';
import { TopologyView } from './topology.js';

type Route = { view: 'stacks' } | { view: 'stack'; stack: string } | { view: 'topology'; stack: string } | { view: 'grid' };

function routeOf(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter((p) => p !== '').map(decodeURIComponent);
  if (parts[0] === 'grid') return { view: 'grid' };
  if (parts[0] === 'stacks' && parts[1] !== undefined) return parts[2] === 'topology' ? { view: 'topology', stack: parts[1] } : { view: 'stack', stack: parts[1] };
  return { view: 'stacks' };
}

function Login({ onIn, notice }: { onIn: () => void; notice: string | undefined }) {
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('token') as HTMLInputElement;
    setBusy(true);
    setError(undefined);
    try {
      await login(input.value);
      input.value = '';
      onIn();
    } catch (err) {
      setError((err as Error).message);
      input.select();
    } finally {
      setBusy(false);
    }
  };
  return (
    <main>
      <form class="login" onSubmit={submit} method="post" action="/ui/session">
        <h1>quarry HQ</h1>
        {notice && <p class="status">{notice}</p>}
        <label for="token">HQ's API token (<code>$QUARRY_HOME/token</code> on HQ's machine)</label>
        <input id="token" type="password" name="token" autocomplete="current-password" required autofocus />
        <button type="submit" disabled={busy}>Log in</button>
        <p class="error" role="alert">{error ?? ''}</p>
      </form>
    </main>
  );
}

function App() {
  const [state, setState] = useState<'checking' | 'out' | 'in'>('checking');
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [route, setRoute] = useState<Route>(routeOf(location.hash));

  useEffect(() => {
    session().then((yes) => setState(yes ? 'in' : 'out'), () => setState('out'));
    const onHash = () => setRoute(routeOf(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  /** Any call that finds the session gone brings the login back. */
  const onError = useCallback((err: unknown) => {
    if (err instanceof SessionEndedError) {
      setNotice('Your session ended: log in again.');
      setState('out');
    }
  }, []);

  useEffect(() => {
    const title = route.view === 'grid' ? 'grid' : route.view === 'stacks' ? 'stacks' : route.view === 'topology' ? `${route.stack} topology` : route.stack;
    document.title = `${title} · quarry HQ`;
  }, [route]);

  if (state === 'checking') return <p class="loading">Loading the dashboard…</p>;
  if (state === 'out') return <Login onIn={() => { setNotice(undefined); setState('in'); }} notice={notice} />;
  const current = (view: Route['view']) => (route.view === view || (view === 'stacks' && (route.view === 'stack' || route.view === 'topology')) ? 'page' : undefined);
  return (
    <>
      <header class="top">
        <span class="brand">quarry HQ</span>
        <nav aria-label="Views">
          <a href="#/" aria-current={current('stacks')}>Stacks</a>
          <a href="#/grid" aria-current={current('grid')}>Grid</a>
        </nav>
        <button class="link" type="button" onClick={async () => { await logout(); setState('out'); }}>Log out</button>
      </header>
      <main>
        {route.view === 'stacks' && <StacksView onError={onError} />}
        {route.view === 'stack' && <StackView key={route.stack} stack={route.stack} onError={onError} />}
        {route.view === 'topology' && <TopologyView key={route.stack} stack={route.stack} onError={onError} />}
        {route.view === 'grid' && <GridView onError={onError} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
