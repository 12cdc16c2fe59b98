import type { Punctual, ServiceCallStatus } from '@punctual/client';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { usePolling } from './router';
import { Alert } from './status';
import { describeError } from './session';

const STATUSES: ServiceCallStatus[] = ['Scheduled', 'Running', 'Succeeded', 'Failed', 'Cancelled'];
const WINDOWS = { hour: 3_600_000, day: 86_400_000 } as const;
type Window = keyof typeof WINDOWS;
/** The chart reads at most this many calls (5 pages of 200); beyond it the counts say "at least". */
const MAX_CALLS = 1_000;

interface Counts {
  byStatus: Record<ServiceCallStatus, number>;
  capped: boolean;
}

/** Calls created in the last hour or day, counted by status from the list endpoint. */
async function count(client: Punctual, window: Window): Promise<Counts> {
  const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<ServiceCallStatus, number>;
  const createdAfter = new Date(Date.now() - WINDOWS[window]).toISOString();
  let seen = 0;
  for await (const call of client.calls.list({ createdAfter, limit: 200 })) {
    byStatus[call.status]++;
    if (++seen >= MAX_CALLS) return { byStatus, capped: true };
  }
  return { byStatus, capped: false };
}

export function StatusChart({ client }: { client: Punctual }) {
  const [window, setWindow] = useState<Window>('hour');
  const [counts, setCounts] = useState<Counts | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    count(client, window).then(
      (c) => {
        setCounts(c);
        setError(null);
      },
      (err: unknown) => setError(describeError(err)),
    );
  }, [client, window]);
  useEffect(load, [load]);
  usePolling(true, 10_000, load);

  const max = Math.max(1, ...STATUSES.map((s) => counts?.byStatus[s] ?? 0));
  const label = window === 'hour' ? 'last hour' : 'last day';
  const summary =
    counts === null
      ? 'loading'
      : STATUSES.map((s) => `${s} ${counts.byStatus[s]}`).join(', ') + (counts.capped ? ' (first 1,000 calls)' : '');
  return (
    <figure class="chart">
      <figcaption>
        Calls created in the {label} by status{' '}
        <span class="window" role="group" aria-label="Chart window">
          {(Object.keys(WINDOWS) as Window[]).map((w) => (
            <button key={w} type="button" class="chip" aria-pressed={w === window} onClick={() => setWindow(w)}>
              {w === 'hour' ? 'Hour' : 'Day'}
            </button>
          ))}
        </span>
      </figcaption>
      <Alert text={error} />
      <svg viewBox="0 0 300 110" role="img" aria-label={`Calls in the ${label}: ${summary}`} class="bars">
        {STATUSES.map((status, i) => {
          const n = counts?.byStatus[status] ?? 0;
          const width = (n / max) * 190;
          return (
            <g key={status} transform={`translate(0 ${i * 22})`}>
              <text x="0" y="14" class="bar-label">
                {status}
              </text>
              <rect
                x="75"
                y="3"
                width={Math.max(width, n > 0 ? 2 : 0)}
                height="14"
                class={`bar bar-${status.toLowerCase()}`}
              />
              <text x={80 + width} y="14" class="bar-value">
                {counts === null ? '' : `${n}${counts.capped ? '+' : ''}`}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
