import type { Punctual } from '@punctual/client';
import { useState } from 'preact/hooks';
import { NotFound, useDetail } from './detail';
import { localTime, ms } from './format';
import { callHref, scheduleCallsHref, usePolling } from './router';
import { Instant, OutcomeNotice, ScheduleActions, specText, type Outcome } from './schedule-parts';
import { Alert, StatusBadge } from './status';

// Runs happen by themselves: the page follows them (and the next runs Temporal computes).
const REFRESH_MS = 2_000;

function attempts(max: number | undefined): string {
  return max === undefined || max === 1 ? '1 attempt' : `up to ${max} attempts`;
}

interface Props {
  client: Punctual;
  id: string;
  onUnauthorized: () => void;
}

export function SchedulePage({ client, id, onUnauthorized }: Props) {
  const { value: schedule, missing, error, load } = useDetail(() => client.schedules.get(id), onUnauthorized);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  usePolling(schedule !== null && !missing, REFRESH_MS, () => void load());

  const onOutcome = (next: Outcome) => {
    if (next.kind === 'deleted') {
      location.hash = '#/schedules';
      return;
    }
    setOutcome(next);
    void load();
  };

  if (missing) {
    return <NotFound what="schedule" by="id" id={id} back={{ href: '#/schedules', text: 'Back to the schedules' }} />;
  }
  if (schedule === null) return <p>{error ?? 'Loading…'}</p>;
  const headers = Object.entries(schedule.request.headers);
  const spec = schedule.spec;
  return (
    <section aria-labelledby="schedule-title">
      <p>
        <a href="#/schedules">← Schedules</a>
      </p>
      <h1 id="schedule-title">
        Schedule <span class="mono">{schedule.id}</span>
      </h1>
      <p>
        <StatusBadge status={schedule.status} />
      </p>
      <Alert text={error} />
      <OutcomeNotice outcome={outcome} />
      <div class="actions" role="group" aria-label="Actions on this schedule">
        <ScheduleActions client={client} schedule={schedule} onOutcome={onOutcome} />
      </div>
      <h2>Summary</h2>
      <dl class="facts">
        <dt>Runs</dt>
        <dd data-testid="spec">{specText(spec)}</dd>
        <dt>Time zone</dt>
        <dd>{spec.timezone}</dd>
        {spec.startAt !== null && (
          <>
            <dt>Starts</dt>
            <dd>
              <Instant iso={spec.startAt} />
            </dd>
          </>
        )}
        {spec.endAt !== null && (
          <>
            <dt>Ends</dt>
            <dd>
              <Instant iso={spec.endAt} />
            </dd>
          </>
        )}
        <dt>Jitter</dt>
        <dd>{spec.jitterSeconds === 0 ? 'none' : `up to ${spec.jitterSeconds} s`}</dd>
        <dt>Overlap</dt>
        <dd>{schedule.overlap}</dd>
        <dt>Tags</dt>
        <dd>{schedule.tags.length === 0 ? '—' : schedule.tags.join(', ')}</dd>
        <dt>Retry</dt>
        <dd>{attempts(schedule.retry.maxAttempts)}</dd>
        <dt>Timeout</dt>
        <dd>{ms(schedule.timeoutMs)}</dd>
        <dt>Callback</dt>
        <dd class="url">
          {schedule.callback === null ? 'none' : `${schedule.callback.url} (on ${schedule.callback.on.join(', ')})`}
        </dd>
        <dt>Created</dt>
        <dd>{localTime(schedule.createdAt)}</dd>
        <dt>Updated</dt>
        <dd>{localTime(schedule.updatedAt)}</dd>
      </dl>
      <h2>Request</h2>
      <p class="url">
        <span class="method">{schedule.request.method}</span> {schedule.request.url}
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
      <h2>Next runs</h2>
      {schedule.nextRunAts.length === 0 ? (
        <p>
          {schedule.status === 'Active'
            ? 'Not known yet (Temporal is being told of the schedule).'
            : `None while ${schedule.status.toLowerCase()}.`}
        </p>
      ) : (
        <ol class="runs" aria-label="Next runs">
          {schedule.nextRunAts.map((at) => (
            <li key={at}>
              <Instant iso={at} />
            </li>
          ))}
        </ol>
      )}
      <h2>Recent runs</h2>
      {schedule.recentRuns.length === 0 ? (
        <p>No run yet.</p>
      ) : (
        <ol class="runs" aria-label="Recent runs">
          {schedule.recentRuns.map((r) => (
            <li key={r.serviceCallId}>
              <Instant iso={r.scheduledAt} /> · call{' '}
              <a href={callHref(r.serviceCallId)} class="mono">
                {r.serviceCallId}
              </a>
            </li>
          ))}
        </ol>
      )}
      <p>
        <a href={scheduleCallsHref(schedule.id)}>All calls of this schedule</a>
      </p>
    </section>
  );
}
