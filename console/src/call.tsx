import type { Punctual, ServiceCall } from '@punctual/client';
import { useState } from 'preact/hooks';
import { NotFound, useDetail } from './detail';
import { fromLocalInput, localTime, ms, toLocalInput, utcTime, zoneName } from './format';
import { callHref, flowLimitHref, scheduleHref, usePolling } from './router';
import { describeError } from './session';
import { Alert, Notice, StatusBadge } from './status';

const REFRESH_MS = 1_000;

type Attempt = ServiceCall['attempts'][number];

function Snippet({ attempt }: { attempt: Pick<Attempt, 'responseSnippet' | 'snippetEncoding' | 'truncated'> }) {
  if (attempt.responseSnippet === null || attempt.responseSnippet === undefined) return null;
  return (
    <details>
      <summary>
        Response snippet ({attempt.snippetEncoding ?? 'utf8'}
        {attempt.truncated === true ? ', truncated' : ''})
      </summary>
      <pre>{attempt.responseSnippet}</pre>
    </details>
  );
}

function Attempts({ call }: { call: ServiceCall }) {
  if (call.attempts.length === 0) {
    return <p>No attempt yet{call.nextAttemptAt != null ? `; next at ${localTime(call.nextAttemptAt)}` : ''}.</p>;
  }
  return (
    <ol class="timeline" aria-label="Attempts">
      {call.attempts.map((a) => (
        <li key={a.attempt} class={a.statusCode !== null && a.statusCode < 300 ? 'ok' : 'failed'}>
          <strong>Attempt {a.attempt}</strong> <time dateTime={a.startedAt}>{localTime(a.startedAt)}</time> ·{' '}
          <span>{a.statusCode === null ? 'no answer' : `HTTP ${a.statusCode}`}</span> · <span>{ms(a.latencyMs)}</span>
          {a.throttledMs !== undefined && (
            <>
              {' '}
              · <span class="throttled">held back {ms(a.throttledMs)} by flow limits</span>
            </>
          )}
          {a.error !== null && <p class="error-text">{a.error}</p>}
          <Snippet attempt={a} />
        </li>
      ))}
    </ol>
  );
}

/** Keys, each linking to its flow limit's page. */
function FlowKeyLinks({ keys, label }: { keys: readonly string[]; label: string }) {
  return (
    <ul class="inline-list" aria-label={label}>
      {keys.map((k) => (
        <li key={k}>
          <a href={flowLimitHref(k)} class="mono">
            {k}
          </a>
        </li>
      ))}
    </ul>
  );
}

function Callback({ call }: { call: ServiceCall }) {
  const callback = call.callback;
  if (callback === null || callback === undefined) return <p>No callback.</p>;
  return (
    <>
      <dl class="facts">
        <dt>URL</dt>
        <dd class="url">{callback.url}</dd>
        <dt>On</dt>
        <dd>{callback.on.join(', ')}</dd>
        <dt>Status</dt>
        <dd>
          <StatusBadge status={callback.status} />
        </dd>
      </dl>
      {callback.attempts.length > 0 && (
        <ol class="timeline" aria-label="Callback deliveries">
          {callback.attempts.map((a) => (
            <li key={a.attempt} class={a.statusCode !== null && a.statusCode < 300 ? 'ok' : 'failed'}>
              <strong>Delivery {a.attempt}</strong> <time dateTime={a.at}>{localTime(a.at)}</time> ·{' '}
              {a.statusCode === null ? 'no answer' : `HTTP ${a.statusCode}`} · {ms(a.latencyMs)}
              {a.error !== null && <p class="error-text">{a.error}</p>}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}

function Reschedule(props: { client: Punctual; call: ServiceCall; onDone: (c: ServiceCall) => void }) {
  const { client, call, onDone } = props;
  const [value, setValue] = useState(() => toLocalInput(new Date(Date.now() + 3_600_000)));
  const [error, setError] = useState<string | null>(null);
  const iso = fromLocalInput(value);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (iso === null) return setError('Pick a date and time');
    try {
      onDone(await client.calls.reschedule(call.id, iso));
      setError(null);
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <form class="reschedule" onSubmit={(e) => void submit(e)}>
      <label for="new-due">New due time ({zoneName()})</label>
      <input
        id="new-due"
        type="datetime-local"
        step={1}
        required
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
      />
      <output for="new-due" aria-live="polite">
        {iso === null ? '' : `= ${utcTime(iso)} UTC`}
      </output>
      <button type="submit">Reschedule</button>
      <Alert text={error} />
    </form>
  );
}

interface Props {
  client: Punctual;
  id: string;
  onUnauthorized: () => void;
}

export function CallPage({ client, id, onUnauthorized }: Props) {
  const {
    value: call,
    setValue: setCall,
    missing,
    error,
    load,
  } = useDetail(() => client.calls.get(id), onUnauthorized);
  const [notice, setNotice] = useState<string | null>(null);
  const pending =
    call !== null && (call.status === 'Scheduled' || call.status === 'Running' || call.callback?.status === 'Pending');
  usePolling(pending, REFRESH_MS, () => void load());

  const act = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      setNotice(done);
      await load();
    } catch (err) {
      setNotice(describeError(err));
    }
  };

  if (missing) return <NotFound what="call" by="id" id={id} back={{ href: '#/calls', text: 'Back to the calls' }} />;
  if (call === null) return <p>{error ?? 'Loading…'}</p>;
  const finished = call.status === 'Succeeded' || call.status === 'Failed' || call.status === 'Cancelled';
  const headers = Object.entries(call.request.headers);
  return (
    <section aria-labelledby="call-title">
      <p>
        <a href="#/calls">← Calls</a>
      </p>
      <h1 id="call-title">
        Call <span class="mono">{call.id}</span>
      </h1>
      <p>
        <StatusBadge status={call.status} />
        {pending && <span class="hint"> refreshing by itself</span>}
      </p>
      <Alert text={error} />
      <Notice text={notice} />
      <div class="actions" role="group" aria-label="Actions on this call">
        {call.status === 'Scheduled' && (
          <button type="button" onClick={() => void act(() => client.calls.cancel(call.id), 'Cancelled.')}>
            Cancel call
          </button>
        )}
        {finished && (
          <button
            type="button"
            onClick={() =>
              void act(async () => {
                const replay = await client.calls.replay(call.id);
                location.hash = callHref(replay.id);
              }, 'Replayed.')
            }
          >
            Replay call
          </button>
        )}
        {call.links?.temporalUi !== undefined && (
          <a href={call.links.temporalUi} target="_blank" rel="noopener noreferrer">
            Open in the Temporal Web UI
          </a>
        )}
      </div>
      {call.status === 'Scheduled' && (
        <Reschedule
          client={client}
          call={call}
          onDone={(c) => {
            setCall(c);
            setNotice('Rescheduled.');
          }}
        />
      )}
      <h2>Summary</h2>
      <dl class="facts">
        <dt>Due</dt>
        <dd>
          <time dateTime={call.dueAt} data-testid="due-at">
            {localTime(call.dueAt)}
          </time>{' '}
          <span class="utc">({utcTime(call.dueAt)} UTC)</span>
        </dd>
        <dt>Created</dt>
        <dd>{localTime(call.createdAt)}</dd>
        <dt>Updated</dt>
        <dd>{localTime(call.updatedAt)}</dd>
        <dt>Tags</dt>
        <dd>{call.tags.length === 0 ? '—' : call.tags.join(', ')}</dd>
        <dt>Retry</dt>
        <dd>{(call.retry?.maxAttempts ?? 1) === 1 ? '1 attempt' : `up to ${call.retry?.maxAttempts} attempts`}</dd>
        <dt>Timeout</dt>
        <dd>{ms(call.timeoutMs)}</dd>
        {call.flowKeys !== undefined && call.flowKeys.length > 0 && (
          <>
            <dt>Flow keys</dt>
            <dd>
              <FlowKeyLinks keys={call.flowKeys} label="Flow keys" />
            </dd>
          </>
        )}
        {call.waitingFor !== undefined && call.waitingFor.length > 0 && (
          <>
            <dt>Waiting for</dt>
            <dd data-testid="waiting-for">
              <FlowKeyLinks keys={call.waitingFor} label="Waiting for" />
            </dd>
          </>
        )}
        {call.scheduleId != null && (
          <>
            <dt>Schedule</dt>
            <dd>
              <a href={scheduleHref(call.scheduleId)} class="mono">
                {call.scheduleId}
              </a>
              {call.scheduledAt != null && <span class="utc"> run for {utcTime(call.scheduledAt)} UTC</span>}
            </dd>
          </>
        )}
        {call.replayOf != null && (
          <>
            <dt>Replay of</dt>
            <dd>
              <a href={callHref(call.replayOf)} class="mono">
                {call.replayOf}
              </a>
            </dd>
          </>
        )}
        {call.replays !== undefined && call.replays.length > 0 && (
          <>
            <dt>Replays</dt>
            <dd>
              {call.replays.map((r) => (
                <a key={r} href={callHref(r)} class="mono replay-link">
                  {r}
                </a>
              ))}
            </dd>
          </>
        )}
        {call.result !== null && (
          <>
            <dt>Result</dt>
            <dd>
              {call.result.outcome}
              {call.result.statusCode !== null ? ` · HTTP ${call.result.statusCode}` : ''}
              {call.result.error !== null ? ` · ${call.result.error}` : ''}
            </dd>
          </>
        )}
      </dl>
      <h2>Request</h2>
      <p class="url">
        <span class="method">{call.request.method}</span> {call.request.url}
      </p>
      {headers.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Request headers</caption>
            <thead>
              <tr>
                <th scope="col">Header</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {headers.map(([name, value]) => (
                <tr key={name}>
                  <td class="mono">{name}</td>
                  <td class="mono">{value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Attempts</h2>
      <Attempts call={call} />
      <h2>Callback</h2>
      <Callback call={call} />
    </section>
  );
}
