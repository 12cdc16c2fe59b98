import type { Punctual, ScheduleListFilter, SchedulePage, ScheduleStatus } from '@punctual/client';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { scheduleHref, usePolling } from './router';
import { ScheduleForm } from './schedule-form';
import { awaitingNextRuns, NextRun, OutcomeNotice, ScheduleActions, specText, type Outcome } from './schedule-parts';
import { describeError, isStatus } from './session';
import { Alert, StatusBadge, Pager } from './status';

export const SCHEDULE_STATUSES: ScheduleStatus[] = ['Active', 'Paused', 'Ended'];
const PAGE_SIZE = 25;
const REFRESH_MS = 2_000;

function Filters({ onApply }: { onApply: (filter: ScheduleListFilter) => void }) {
  const [status, setStatus] = useState<'' | ScheduleStatus>('');
  const [tags, setTags] = useState('');
  const apply = (event: Event) => {
    event.preventDefault();
    const filter: ScheduleListFilter = {};
    if (status !== '') filter.status = status;
    const list = tags
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
    if (list.length > 0) filter.tag = list;
    onApply(filter);
  };
  return (
    <form class="filters" aria-label="Schedule filters" onSubmit={apply}>
      <div class="field">
        <label for="sf-status">Status</label>
        <select id="sf-status" value={status} onChange={(e) => setStatus(e.currentTarget.value as '' | ScheduleStatus)}>
          <option value="">any</option>
          {SCHEDULE_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="sf-tags">Tags (comma-separated, all must match)</label>
        <input id="sf-tags" value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
      </div>
      <div class="actions">
        <button type="submit">Apply filters</button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setStatus('');
            setTags('');
            onApply({});
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

interface Props {
  client: Punctual;
  onUnauthorized: () => void;
}

export function SchedulesPage({ client, onUnauthorized }: Props) {
  const [filter, setFilter] = useState<ScheduleListFilter>({});
  // The cursors of the pages before this one, and this one's (undefined: the first page).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<SchedulePage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [creating, setCreating] = useState(false);
  const cursor = cursors[cursors.length - 1];

  const load = useCallback(async () => {
    try {
      const query = { ...filter, limit: String(PAGE_SIZE), ...(cursor === undefined ? {} : { cursor }) };
      setPage(await client.schedules.page(query));
      setError(null);
    } catch (err) {
      if (isStatus(err, 401)) return onUnauthorized();
      setError(describeError(err));
    }
  }, [client, filter, cursor, onUnauthorized]);
  useEffect(() => {
    void load();
  }, [load]);
  // Right after a create or a resume, Temporal may not have answered the next runs yet.
  usePolling(page !== null && awaitingNextRuns(page.items), REFRESH_MS, () => void load());

  const apply = (next: ScheduleListFilter) => {
    setFilter(next);
    setCursors([undefined]);
    setOutcome(null);
  };
  const onOutcome = (next: Outcome) => {
    setOutcome(next);
    void load();
  };

  return (
    <section aria-labelledby="schedules-title">
      <h1 id="schedules-title">Schedules</h1>
      <p>Each run of a schedule is an ordinary call, listed with the calls.</p>
      <div class="actions">
        <button
          type="button"
          aria-expanded={creating}
          aria-controls="new-schedule"
          onClick={() => setCreating(!creating)}
        >
          New schedule
        </button>
      </div>
      {creating && (
        <ScheduleForm
          client={client}
          onUnauthorized={onUnauthorized}
          onCreated={(s) => onOutcome({ kind: 'changed', text: `Created schedule ${s.id} (${s.status}).` })}
        />
      )}
      <Filters onApply={apply} />
      <OutcomeNotice outcome={outcome} />
      <Alert text={error} />
      {page !== null && (
        <div class="table-wrap">
          <table class="schedules">
            <caption class="sr-only">Schedules, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Schedule</th>
                <th scope="col">Runs</th>
                <th scope="col">Status</th>
                <th scope="col">Request</th>
                <th scope="col">Next run</th>
                <th scope="col">Tags</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {page.items.length === 0 && (
                <tr>
                  <td colSpan={7}>No schedules match.</td>
                </tr>
              )}
              {page.items.map((s) => (
                <tr key={s.id} data-schedule-id={s.id}>
                  <td>
                    <a href={scheduleHref(s.id)} class="mono" aria-label={`Schedule ${s.id}`}>
                      {s.id.slice(0, 8)}
                    </a>
                  </td>
                  <td class="spec">{specText(s.spec)}</td>
                  <td>
                    <StatusBadge status={s.status} />
                  </td>
                  <td class="url">
                    <span class="method">{s.request.method}</span> {s.request.url}
                  </td>
                  <td class="next-run">
                    <NextRun schedule={s} />
                  </td>
                  <td>{s.tags.join(', ')}</td>
                  <td>
                    <ScheduleActions client={client} schedule={s} onOutcome={onOutcome} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager cursors={cursors} setCursors={setCursors} nextCursor={page === null ? null : (page.nextCursor ?? null)} />
    </section>
  );
}
