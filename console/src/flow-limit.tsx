import type { Punctual } from '@punctual/client';
import { useState } from 'preact/hooks';
import { ConfirmDelete } from './confirm';
import { NotFound, useDetail } from './detail';
import { FlowLimitForm } from './flow-limit-form';
import { Amount, savedText } from './flow-limits';
import { localTime } from './format';
import { callHref, usePolling } from './router';
import { Instant } from './schedule-parts';
import { describeError, isStatus } from './session';
import { Alert, Notice } from './status';

// Attempts start and finish by themselves: the page follows the counts and the waiting calls.
const REFRESH_MS = 1_000;

interface Props {
  client: Punctual;
  flowKey: string;
  onUnauthorized: () => void;
}

export function FlowLimitPage({ client, flowKey, onUnauthorized }: Props) {
  const { value: limit, missing, error, load } = useDetail(() => client.flowLimits.get(flowKey), onUnauthorized);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  usePolling(limit !== null && !missing, REFRESH_MS, () => void load());

  const remove = async () => {
    setDeleting(true);
    try {
      await client.flowLimits.delete(flowKey);
      location.hash = '#/flow-limits';
    } catch (err) {
      if (isStatus(err, 401)) return onUnauthorized();
      setFailure(describeError(err));
    } finally {
      setDeleting(false);
    }
  };

  if (missing) {
    return (
      <NotFound
        what="flow limit"
        by="key"
        id={flowKey}
        back={{ href: '#/flow-limits', text: 'Back to the flow limits' }}
      />
    );
  }
  if (limit === null) return <p>{error ?? 'Loading…'}</p>;
  return (
    <section aria-labelledby="flow-limit-title">
      <p>
        <a href="#/flow-limits">← Flow limits</a>
      </p>
      <h1 id="flow-limit-title">
        Flow limit <span class="mono">{limit.key}</span>
      </h1>
      <Alert text={error ?? failure} />
      <Notice text={notice} />
      <div class="actions" role="group" aria-label="Actions on this flow limit">
        <button
          type="button"
          class="secondary"
          aria-expanded={editing}
          aria-controls="edit-limit"
          onClick={() => setEditing(!editing)}
        >
          Edit
        </button>
        <ConfirmDelete
          what={`flow limit ${limit.key}`}
          question="Delete this limit? The calls waiting for it go ahead when they next ask."
          busy={deleting}
          onConfirm={() => void remove()}
        />
      </div>
      {editing && (
        <FlowLimitForm
          client={client}
          limit={limit}
          onUnauthorized={onUnauthorized}
          onSaved={(saved) => {
            setEditing(false);
            setNotice(savedText(saved));
            void load();
          }}
        />
      )}
      <h2>Limit</h2>
      <dl class="facts">
        <dt>Rate (per second)</dt>
        <dd data-testid="rate">
          <Amount value={limit.ratePerSecond} />
        </dd>
        <dt>Burst</dt>
        <dd data-testid="burst">
          <Amount value={limit.burst} />
        </dd>
        <dt>Concurrency</dt>
        <dd data-testid="concurrency">
          <Amount value={limit.concurrency} />
        </dd>
        <dt>In flight</dt>
        <dd data-testid="in-flight">{limit.inFlight}</dd>
        <dt>Waiting</dt>
        <dd data-testid="waiting">{limit.waiting}</dd>
        <dt>Created</dt>
        <dd>{localTime(limit.createdAt)}</dd>
        <dt>Updated</dt>
        <dd>{localTime(limit.updatedAt)}</dd>
      </dl>
      <h2>Waiting calls</h2>
      {limit.waitingCalls.length === 0 ? (
        <p>No call is waiting for this limit.</p>
      ) : (
        <>
          {limit.waiting > limit.waitingCalls.length && (
            <p class="hint">
              The {limit.waitingCalls.length} admitted next of {limit.waiting}.
            </p>
          )}
          <div class="table-wrap">
            <table class="waiting-calls">
              <caption class="sr-only">Waiting calls, the next admitted first</caption>
              <thead>
                <tr>
                  <th scope="col">Call</th>
                  <th scope="col">Due</th>
                  <th scope="col">Waiting since</th>
                </tr>
              </thead>
              <tbody>
                {limit.waitingCalls.map((w) => (
                  <tr key={w.id} data-call-id={w.id}>
                    <td>
                      <a href={callHref(w.id)} class="mono" aria-label={`Call ${w.id}`}>
                        {w.id.slice(0, 8)}
                      </a>
                    </td>
                    <td>
                      <Instant iso={w.dueAt} />
                    </td>
                    <td>
                      <Instant iso={w.since} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
