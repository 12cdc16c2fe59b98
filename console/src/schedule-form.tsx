import type { Punctual, Schedule, ScheduleCreateBody } from '@punctual/client';
import { useState } from 'preact/hooks';
import { zoneName } from './format';
import { useFormState } from './form';
import { Alert } from './status';

type Method = ScheduleCreateBody['request']['method'];
const METHODS: Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

interface Draft {
  kind: 'cron' | 'interval';
  cron: string;
  intervalSeconds: string;
  timezone: string;
  method: Method;
  url: string;
  headers: string;
  body: string;
  tags: string;
  paused: boolean;
}

const empty = (): Draft => ({
  kind: 'cron',
  cron: '',
  intervalSeconds: '3600',
  timezone: zoneName(),
  method: 'POST',
  url: '',
  headers: '',
  body: '',
  tags: '',
  paused: false,
});

/** The draft as the create body; what the browser can judge alone is reported by the field's label. */
function toBody(draft: Draft): { body: ScheduleCreateBody } | { error: string; field: string } {
  const headers: Record<string, string> = {};
  const lines = draft.headers.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return { error: `Headers: line ${i + 1} is not "Name: value"`, field: 'request.headers' };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  let body: unknown;
  if (draft.body.trim() !== '') {
    try {
      body = JSON.parse(draft.body) as unknown;
    } catch {
      return { error: 'Body: not valid JSON', field: 'request.body' };
    }
  }
  const tags = draft.tags
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const spec =
    draft.kind === 'cron'
      ? { cron: draft.cron.trim() }
      : { intervalSeconds: draft.intervalSeconds.trim() === '' ? Number.NaN : Number(draft.intervalSeconds) };
  if ('intervalSeconds' in spec && !Number.isInteger(spec.intervalSeconds)) {
    return { error: 'Interval: a whole number of seconds', field: 'intervalSeconds' };
  }
  return {
    body: {
      ...spec,
      timezone: draft.timezone.trim(),
      request: {
        method: draft.method,
        url: draft.url.trim(),
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
        ...(body === undefined ? {} : { body }),
      },
      tags,
      paused: draft.paused,
    },
  };
}

/** Which of the form's inputs an API field (`cron`, `request.url`, `tags.0`, …) is about. */
function inputFor(field: string): keyof Draft | undefined {
  const head = field.replace(/^body\./, '');
  if (head === 'cron') return 'cron';
  if (head === 'intervalSeconds') return 'intervalSeconds';
  if (head === 'timezone') return 'timezone';
  if (head.startsWith('request.method')) return 'method';
  if (head.startsWith('request.url')) return 'url';
  if (head.startsWith('request.headers')) return 'headers';
  if (head.startsWith('request.body')) return 'body';
  if (head.startsWith('tags')) return 'tags';
  return undefined;
}

interface Props {
  client: Punctual;
  onCreated: (schedule: Schedule) => void;
  onUnauthorized: () => void;
}

export function ScheduleForm({ client, onCreated, onUnauthorized }: Props) {
  const [draft, setDraft] = useState<Draft>(empty);
  // An input the API (or the check below) refused is marked invalid and points at the message.
  const { error, busy, refuse, run, flags } = useFormState('schedule-error', inputFor, onUnauthorized);
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });

  const submit = (event: Event) => {
    event.preventDefault();
    const result = toBody(draft);
    if ('error' in result) return refuse(result.error, result.field);
    return run(async (succeeded) => {
      const schedule = await client.schedules.create(result.body);
      succeeded();
      setDraft({ ...empty(), timezone: draft.timezone });
      onCreated(schedule);
    });
  };

  return (
    <form id="new-schedule" class="filters schedule-form" aria-label="New schedule" onSubmit={(e) => void submit(e)}>
      <fieldset>
        <legend>Runs</legend>
        <label class="check">
          <input type="radio" name="kind" checked={draft.kind === 'cron'} onChange={() => set({ kind: 'cron' })} />
          On a cron expression
        </label>
        <label class="check">
          <input
            type="radio"
            name="kind"
            checked={draft.kind === 'interval'}
            onChange={() => set({ kind: 'interval' })}
          />
          Every N seconds
        </label>
      </fieldset>
      {draft.kind === 'cron' ? (
        <div class="field">
          <label for="s-cron">Cron (minute hour day-of-month month day-of-week)</label>
          <input
            id="s-cron"
            class="mono"
            required
            placeholder="0 9 * * 1-5"
            value={draft.cron}
            onInput={(e) => set({ cron: e.currentTarget.value })}
            {...flags('cron')}
          />
        </div>
      ) : (
        <div class="field">
          <label for="s-interval">Interval (seconds)</label>
          <input
            id="s-interval"
            type="number"
            min={1}
            step={1}
            required
            value={draft.intervalSeconds}
            onInput={(e) => set({ intervalSeconds: e.currentTarget.value })}
            {...flags('intervalSeconds')}
          />
        </div>
      )}
      <div class="field">
        <label for="s-timezone">Time zone (IANA, for the cron fields)</label>
        <input
          id="s-timezone"
          required
          value={draft.timezone}
          onInput={(e) => set({ timezone: e.currentTarget.value })}
          {...flags('timezone')}
        />
      </div>
      <div class="field">
        <label for="s-method">Method</label>
        <select
          id="s-method"
          value={draft.method}
          onChange={(e) => set({ method: e.currentTarget.value as Method })}
          {...flags('method')}
        >
          {METHODS.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </div>
      <div class="field wide">
        <label for="s-url">URL</label>
        <input
          id="s-url"
          type="url"
          required
          placeholder="https://example.com/hook"
          value={draft.url}
          onInput={(e) => set({ url: e.currentTarget.value })}
          {...flags('url')}
        />
      </div>
      <div class="field wide">
        <label for="s-headers">Headers (optional, one "Name: value" a line)</label>
        <textarea
          id="s-headers"
          class="mono"
          rows={2}
          value={draft.headers}
          onInput={(e) => set({ headers: e.currentTarget.value })}
          {...flags('headers')}
        />
      </div>
      <div class="field wide">
        <label for="s-body">Body (optional, JSON)</label>
        <textarea
          id="s-body"
          class="mono"
          rows={3}
          value={draft.body}
          onInput={(e) => set({ body: e.currentTarget.value })}
          {...flags('body')}
        />
      </div>
      <div class="field">
        <label for="s-tags">Tags (comma-separated)</label>
        <input
          id="s-tags"
          value={draft.tags}
          onInput={(e) => set({ tags: e.currentTarget.value })}
          {...flags('tags')}
        />
      </div>
      <label class="check">
        <input type="checkbox" checked={draft.paused} onChange={(e) => set({ paused: e.currentTarget.checked })} />
        Start paused
      </label>
      <div class="actions wide">
        <button type="submit" disabled={busy}>
          Create schedule
        </button>
      </div>
      <div class="wide" id="schedule-error">
        <Alert text={error} />
      </div>
    </form>
  );
}
