import type { ListFilter, Punctual, ServiceCallPage, ServiceCallStatus } from '@punctual/client';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { fromLocalInput, localTime } from './format';
import { callHref, scheduleCallsHref, usePolling } from './router';
import { describeError, isStatus } from './session';
import { Alert, Notice, StatusBadge, Pager } from './status';
import { StatusChart } from './chart';

export const STATUSES: ServiceCallStatus[] = ['Scheduled', 'Running', 'Succeeded', 'Failed', 'Cancelled'];
const CALLBACK_STATUSES = ['Pending', 'Delivered', 'Failed', 'NotRequired'] as const;
type CallbackStatus = (typeof CALLBACK_STATUSES)[number];
const PAGE_SIZE = 25;
const REFRESH_MS = 1_500;

interface Draft {
  status: ServiceCallStatus[];
  tags: string;
  createdAfter: string;
  createdBefore: string;
  dueAfter: string;
  dueBefore: string;
  replayOf: string;
  scheduleId: string;
  callbackStatus: '' | CallbackStatus;
}

const EMPTY: Draft = {
  status: [],
  tags: '',
  createdAfter: '',
  createdBefore: '',
  dueAfter: '',
  dueBefore: '',
  replayOf: '',
  scheduleId: '',
  callbackStatus: '',
};

/** The draft as the API's filter: only what is set; a date that does not parse is reported by name. */
function toFilter(draft: Draft): { filter: ListFilter } | { error: string } {
  const filter: ListFilter = {};
  if (draft.status.length > 0) filter.status = draft.status;
  const tags = draft.tags
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (tags.length > 0) filter.tag = tags;
  for (const name of ['createdAfter', 'createdBefore', 'dueAfter', 'dueBefore'] as const) {
    if (draft[name] === '') continue;
    const iso = fromLocalInput(draft[name]);
    if (iso === null) return { error: `${name}: not a date and time` };
    filter[name] = iso;
  }
  if (draft.replayOf.trim() !== '') filter.replayOf = draft.replayOf.trim();
  if (draft.scheduleId.trim() !== '') filter.scheduleId = draft.scheduleId.trim();
  if (draft.callbackStatus !== '') filter.callbackStatus = draft.callbackStatus;
  return { filter };
}

function DateField(props: { id: keyof Draft; label: string; draft: Draft; set: (d: Draft) => void }) {
  return (
    <div class="field">
      <label for={`f-${props.id}`}>{props.label}</label>
      <input
        id={`f-${props.id}`}
        type="datetime-local"
        step={1}
        value={props.draft[props.id] as string}
        onInput={(e) => props.set({ ...props.draft, [props.id]: e.currentTarget.value })}
      />
    </div>
  );
}

function Filters({ initial, onApply }: { initial: Draft; onApply: (filter: ListFilter) => void }) {
  const [draft, setDraft] = useState<Draft>(initial);
  const [error, setError] = useState<string | null>(null);
  const apply = (event: Event) => {
    event.preventDefault();
    const result = toFilter(draft);
    if ('error' in result) return setError(result.error);
    setError(null);
    onApply(result.filter);
  };
  const toggle = (status: ServiceCallStatus, on: boolean) =>
    setDraft({ ...draft, status: on ? [...draft.status, status] : draft.status.filter((s) => s !== status) });
  return (
    <form class="filters" aria-label="Filters" onSubmit={apply}>
      <fieldset>
        <legend>Status</legend>
        {STATUSES.map((status) => (
          <label key={status} class="check">
            <input
              type="checkbox"
              checked={draft.status.includes(status)}
              onChange={(e) => toggle(status, e.currentTarget.checked)}
            />
            {status}
          </label>
        ))}
      </fieldset>
      <div class="field">
        <label for="f-tags">Tags (comma-separated, all must match)</label>
        <input id="f-tags" value={draft.tags} onInput={(e) => setDraft({ ...draft, tags: e.currentTarget.value })} />
      </div>
      <DateField id="createdAfter" label="Created after" draft={draft} set={setDraft} />
      <DateField id="createdBefore" label="Created before" draft={draft} set={setDraft} />
      <DateField id="dueAfter" label="Due after" draft={draft} set={setDraft} />
      <DateField id="dueBefore" label="Due before" draft={draft} set={setDraft} />
      <div class="field">
        <label for="f-replayOf">Replays of call</label>
        <input
          id="f-replayOf"
          value={draft.replayOf}
          onInput={(e) => setDraft({ ...draft, replayOf: e.currentTarget.value })}
        />
      </div>
      <div class="field">
        <label for="f-scheduleId">Runs of schedule</label>
        <input
          id="f-scheduleId"
          value={draft.scheduleId}
          onInput={(e) => setDraft({ ...draft, scheduleId: e.currentTarget.value })}
        />
      </div>
      <div class="field">
        <label for="f-callback">Callback status</label>
        <select
          id="f-callback"
          value={draft.callbackStatus}
          onChange={(e) => setDraft({ ...draft, callbackStatus: e.currentTarget.value as Draft['callbackStatus'] })}
        >
          <option value="">any</option>
          {CALLBACK_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div class="actions">
        <button type="submit">Apply filters</button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setDraft(EMPTY);
            setError(null);
            onApply({});
          }}
        >
          Clear
        </button>
      </div>
      <Alert text={error} />
    </form>
  );
}

interface Props {
  client: Punctual;
  /** From the route (`#/calls?scheduleId=`): the list opens filtered to that schedule's runs. */
  scheduleId?: string | undefined;
  onUnauthorized: () => void;
}

export function CallsPage({ client, scheduleId, onUnauthorized }: Props) {
  const [filter, setFilter] = useState<ListFilter>(() => (scheduleId === undefined ? {} : { scheduleId }));
  // The cursors of the pages before this one, and this one's (undefined: the first page).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<ServiceCallPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const cursor = cursors[cursors.length - 1];

  const load = useCallback(async () => {
    try {
      const query = { ...filter, limit: PAGE_SIZE, ...(cursor === undefined ? {} : { cursor }) };
      setPage(await client.calls.page(query));
      setError(null);
    } catch (err) {
      if (isStatus(err, 401)) return onUnauthorized();
      setError(describeError(err));
    }
  }, [client, filter, cursor, onUnauthorized]);

  useEffect(() => {
    void load();
  }, [load]);
  const pending = page?.items.some((c) => c.status === 'Scheduled' || c.status === 'Running') ?? false;
  // The first page shows new calls as they arrive; a later page refreshes while its calls are pending.
  usePolling(pending || cursor === undefined, REFRESH_MS, () => void load());

  const apply = (next: ListFilter) => {
    // The address keeps the schedule filter (so it can be shared or reloaded); no hashchange, no remount.
    const hash = next.scheduleId === undefined ? '#/calls' : scheduleCallsHref(next.scheduleId);
    if (location.hash !== hash) history.replaceState(null, '', hash);
    setFilter(next);
    setCursors([undefined]);
    setSelected(new Set());
    setNotice(null);
  };
  const toggle = (id: string, on: boolean) => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    setSelected(next);
  };

  /** One request per selected call; the counts say what the API answered. */
  const onSelected = async (action: 'cancel' | 'replay') => {
    setBusy(true);
    let done = 0;
    const refused: string[] = [];
    for (const id of selected) {
      try {
        if (action === 'cancel') await client.calls.cancel(id);
        else await client.calls.replay(id);
        done++;
      } catch (err) {
        refused.push(`${id.slice(0, 8)}: ${describeError(err)}`);
      }
    }
    const verb = action === 'cancel' ? 'Cancelled' : 'Replayed';
    setNotice(
      `${verb} ${done} of ${selected.size} selected` + (refused.length > 0 ? `; refused: ${refused.join('; ')}` : ''),
    );
    setSelected(new Set());
    setBusy(false);
    await load();
  };

  /** The bulk endpoints on the applied filter (the API refuses an empty one). */
  const onFilter = async (action: 'cancel' | 'replay') => {
    setBusy(true);
    try {
      const { limit: _limit, ...rest } = filter;
      const answer =
        action === 'cancel'
          ? await client.calls.bulkCancel({ filter: rest })
          : await client.calls.bulkReplay({ filter: rest });
      setNotice(
        `${action === 'cancel' ? 'Bulk cancel' : 'Bulk replay'}: matched ${answer.matched}, affected ${answer.affected}`,
      );
    } catch (err) {
      setNotice(describeError(err));
    } finally {
      setBusy(false);
    }
    await load();
  };

  const filtered = Object.keys(filter).length > 0;
  return (
    <section aria-labelledby="calls-title">
      <h1 id="calls-title">Calls</h1>
      <StatusChart client={client} />
      <Filters initial={{ ...EMPTY, scheduleId: scheduleId ?? '' }} onApply={apply} />
      <div class="bulk" role="group" aria-label="Actions on calls">
        <button type="button" disabled={busy || selected.size === 0} onClick={() => void onSelected('cancel')}>
          Cancel selected ({selected.size})
        </button>
        <button type="button" disabled={busy || selected.size === 0} onClick={() => void onSelected('replay')}>
          Replay selected ({selected.size})
        </button>
        <button type="button" class="secondary" disabled={busy || !filtered} onClick={() => void onFilter('cancel')}>
          Cancel all matching
        </button>
        <button type="button" class="secondary" disabled={busy || !filtered} onClick={() => void onFilter('replay')}>
          Replay all matching
        </button>
      </div>
      <Notice text={notice} />
      <Alert text={error} />
      {pending && <p class="hint">Refreshing by itself while calls on this page are pending.</p>}
      {page !== null && (
        <div class="table-wrap">
          <table class="calls">
            <caption class="sr-only">Calls, newest first</caption>
            <thead>
              <tr>
                <th scope="col">
                  <span class="sr-only">Select</span>
                </th>
                <th scope="col">Call</th>
                <th scope="col">Status</th>
                <th scope="col">Request</th>
                <th scope="col">Due</th>
                <th scope="col">Tags</th>
              </tr>
            </thead>
            <tbody>
              {page.items.length === 0 && (
                <tr>
                  <td colSpan={6}>No calls match.</td>
                </tr>
              )}
              {page.items.map((call) => (
                <tr key={call.id} data-call-id={call.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select call ${call.id}`}
                      checked={selected.has(call.id)}
                      onChange={(e) => toggle(call.id, e.currentTarget.checked)}
                    />
                  </td>
                  <td>
                    <a href={callHref(call.id)} class="mono">
                      {call.id.slice(0, 8)}
                    </a>
                  </td>
                  <td>
                    <StatusBadge status={call.status} />
                  </td>
                  <td class="url">
                    <span class="method">{call.request.method}</span> {call.request.url}
                  </td>
                  <td>{localTime(call.dueAt)}</td>
                  <td>{call.tags.join(', ')}</td>
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
