import type { FlowLimitPutAnswer, FlowLimitSummary, Punctual } from '@punctual/client';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { FlowLimitForm } from './flow-limit-form';
import { flowLimitHref, usePolling } from './router';
import { describeError, isStatus } from './session';
import { Alert, Notice } from './status';

// In flight and waiting change by themselves, as calls come and go.
const REFRESH_MS = 2_000;

/** A limit's number, or that it has none of that kind. */
export function Amount({ value }: { value: number | null }) {
  return value === null ? <span class="hint">none</span> : <>{value}</>;
}

/** "Defined" for a new key, "Replaced" for one that was there (its createdAt is older). */
export function savedText(limit: FlowLimitPutAnswer): string {
  return `${limit.createdAt === limit.updatedAt ? 'Defined' : 'Replaced'} flow limit ${limit.key}.`;
}

interface Props {
  client: Punctual;
  onUnauthorized: () => void;
}

export function FlowLimitsPage({ client, onUnauthorized }: Props) {
  const [limits, setLimits] = useState<FlowLimitSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);

  const load = useCallback(async () => {
    try {
      setLimits(await client.flowLimits.list());
      setError(null);
    } catch (err) {
      if (isStatus(err, 401)) return onUnauthorized();
      setError(describeError(err));
    }
  }, [client, onUnauthorized]);
  useEffect(() => {
    void load();
  }, [load]);
  usePolling(limits !== null, REFRESH_MS, () => void load());

  return (
    <section aria-labelledby="flow-limits-title">
      <h1 id="flow-limits-title">Flow limits</h1>
      <p>
        A rate, a concurrency or both per key, shared by every worker. A call names its keys in <code>flowKeys</code>; a
        throttled call waits, it is never failed.
      </p>
      <div class="actions">
        <button type="button" aria-expanded={creating} aria-controls="new-limit" onClick={() => setCreating(!creating)}>
          New flow limit
        </button>
      </div>
      {creating && (
        <FlowLimitForm
          client={client}
          onUnauthorized={onUnauthorized}
          onSaved={(limit) => {
            setNotice(savedText(limit));
            void load();
          }}
        />
      )}
      <Notice text={notice} />
      <Alert text={error} />
      {limits !== null && (
        <div class="table-wrap">
          <table class="flow-limits">
            <caption class="sr-only">Flow limits, by key</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Rate/s</th>
                <th scope="col">Burst</th>
                <th scope="col">Concurrency</th>
                <th scope="col">In flight</th>
                <th scope="col">Waiting</th>
              </tr>
            </thead>
            <tbody>
              {limits.length === 0 && (
                <tr>
                  <td colSpan={6}>No flow limits yet.</td>
                </tr>
              )}
              {limits.map((l) => (
                <tr key={l.key} data-flow-key={l.key}>
                  <th scope="row" class="key">
                    <a href={flowLimitHref(l.key)} class="mono">
                      {l.key}
                    </a>
                  </th>
                  <td class="rate" data-label="Rate/s">
                    <Amount value={l.ratePerSecond} />
                  </td>
                  <td class="burst" data-label="Burst">
                    <Amount value={l.burst} />
                  </td>
                  <td class="concurrency" data-label="Concurrency">
                    <Amount value={l.concurrency} />
                  </td>
                  <td class="in-flight" data-label="In flight">
                    {l.inFlight}
                  </td>
                  <td class="waiting" data-label="Waiting">
                    {l.waiting}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
