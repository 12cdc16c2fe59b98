import type { Punctual } from '@punctual/client';
import { render } from 'preact';
import { useState } from 'preact/hooks';
import { CallPage } from './call';
import { CallsPage } from './calls';
import { FlowLimitPage } from './flow-limit';
import { FlowLimitsPage } from './flow-limits';
import { SchedulePage } from './schedule';
import { SchedulesPage } from './schedules';
import { useRoute } from './router';
import { Alert } from './status';
import { SecretsPage } from './secrets';
import { clientFor, describeError, signIn, signOut, storedKey } from './session';

function SignIn({ onSignedIn }: { onSignedIn: (client: Punctual) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(key.trim()));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>Punctual</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        <p class="hint">Kept in this tab only (sessionStorage) and sent to this API alone.</p>
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
        <Alert text={error} />
      </form>
    </main>
  );
}

function App() {
  const [client, setClient] = useState<Punctual | null>(() => {
    const key = storedKey();
    return key === null ? null : clientFor(key);
  });
  const route = useRoute();
  if (client === null) return <SignIn onSignedIn={setClient} />;
  const out = () => {
    signOut();
    setClient(null);
  };
  return (
    <>
      <header class="top">
        <a class="brand" href="#/calls">
          Punctual
        </a>
        <nav aria-label="Main">
          <a href="#/calls" aria-current={route.page === 'calls' || route.page === 'call' ? 'page' : undefined}>
            Calls
          </a>
          <a
            href="#/schedules"
            aria-current={route.page === 'schedules' || route.page === 'schedule' ? 'page' : undefined}
          >
            Schedules
          </a>
          <a
            href="#/flow-limits"
            aria-current={route.page === 'flow-limits' || route.page === 'flow-limit' ? 'page' : undefined}
          >
            Flow limits
          </a>
          <a href="#/secrets" aria-current={route.page === 'secrets' ? 'page' : undefined}>
            Signing secrets
          </a>
        </nav>
        <button type="button" class="secondary" onClick={out}>
          Sign out
        </button>
      </header>
      <main>
        {route.page === 'calls' && (
          <CallsPage key={route.scheduleId ?? ''} client={client} scheduleId={route.scheduleId} onUnauthorized={out} />
        )}
        {route.page === 'call' && <CallPage key={route.id} client={client} id={route.id} onUnauthorized={out} />}
        {route.page === 'schedules' && <SchedulesPage client={client} onUnauthorized={out} />}
        {route.page === 'schedule' && (
          <SchedulePage key={route.id} client={client} id={route.id} onUnauthorized={out} />
        )}
        {route.page === 'flow-limits' && <FlowLimitsPage client={client} onUnauthorized={out} />}
        {route.page === 'flow-limit' && (
          <FlowLimitPage key={route.key} client={client} flowKey={route.key} onUnauthorized={out} />
        )}
        {route.page === 'secrets' && <SecretsPage client={client} onUnauthorized={out} />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  // index.html shows a placeholder until the script runs; Preact renders beside what it did not make.
  root.replaceChildren();
  render(<App />, root);
}
