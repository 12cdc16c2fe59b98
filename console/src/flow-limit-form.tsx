import type { FlowLimitPutAnswer, FlowLimitPutBody, FlowLimitSummary, Punctual } from '@punctual/client';
import { useState } from 'preact/hooks';
import { useFormState } from './form';
import { Alert } from './status';

interface Draft {
  key: string;
  ratePerSecond: string;
  burst: string;
  concurrency: string;
}

const text = (n: number | null) => (n === null ? '' : String(n));

function draftOf(limit: FlowLimitSummary | undefined): Draft {
  if (limit === undefined) return { key: '', ratePerSecond: '', burst: '', concurrency: '' };
  return {
    key: limit.key,
    ratePerSecond: text(limit.ratePerSecond),
    burst: text(limit.burst),
    concurrency: text(limit.concurrency),
  };
}

/**
 * The draft as the PUT body: only what is filled in. The rules (a rate above 0, at least one of
 * rate and concurrency, a burst only with a rate) are the API's, and its 400 names the field.
 */
function toBody(draft: Draft): FlowLimitPutBody {
  const body: FlowLimitPutBody = {};
  const number = (value: string) => (value.trim() === '' ? undefined : Number(value));
  const rate = number(draft.ratePerSecond);
  const burst = number(draft.burst);
  const concurrency = number(draft.concurrency);
  if (rate !== undefined) body.ratePerSecond = rate;
  if (burst !== undefined) body.burst = burst;
  if (concurrency !== undefined) body.concurrency = concurrency;
  return body;
}

/** Which input an API field (`ratePerSecond`, `body.burst`, `params.key`) is about. */
function inputFor(field: string): keyof Draft | undefined {
  const name = field.replace(/^(body|params)\./, '');
  return name === 'key' || name === 'ratePerSecond' || name === 'burst' || name === 'concurrency' ? name : undefined;
}

interface Props {
  client: Punctual;
  /** The limit to edit (its key fixed); none: a new one (a key that exists is replaced). */
  limit?: FlowLimitSummary;
  onSaved: (limit: FlowLimitPutAnswer) => void;
  onUnauthorized: () => void;
}

export function FlowLimitForm({ client, limit, onSaved, onUnauthorized }: Props) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(limit));
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });
  const editing = limit !== undefined;
  const name = editing ? `Edit flow limit ${limit.key}` : 'New flow limit';
  const errorId = editing ? 'edit-limit-error' : 'new-limit-error';
  const { error, busy, run, flags } = useFormState(errorId, inputFor, onUnauthorized);

  const submit = (event: Event) => {
    event.preventDefault();
    return run(async (succeeded) => {
      const saved = await client.flowLimits.put(draft.key.trim(), toBody(draft));
      succeeded();
      if (!editing) setDraft(draftOf(undefined));
      onSaved(saved);
    });
  };

  // No min or step on the numbers beyond what their kind needs: the API judges, and says which field.
  return (
    <form
      id={editing ? 'edit-limit' : 'new-limit'}
      class="filters flow-limit-form"
      aria-label={name}
      onSubmit={(e) => void submit(e)}
    >
      {!editing && (
        <div class="field">
          <label for="fl-key">Key</label>
          <input
            id="fl-key"
            class="mono"
            required
            autocomplete="off"
            spellcheck={false}
            placeholder="customer:42"
            aria-describedby="fl-key-hint"
            value={draft.key}
            onInput={(e) => set({ key: e.currentTarget.value })}
            {...flags('key')}
          />
          <span id="fl-key-hint" class="hint">
            1–128 of A–Z a–z 0–9 . _ : - ; host:&lt;hostname&gt; limits every call to that host
          </span>
        </div>
      )}
      <div class="field">
        <label for="fl-rate">Rate (per second)</label>
        <input
          id="fl-rate"
          type="number"
          step="any"
          inputMode="decimal"
          value={draft.ratePerSecond}
          onInput={(e) => set({ ratePerSecond: e.currentTarget.value })}
          {...flags('ratePerSecond')}
        />
      </div>
      <div class="field">
        <label for="fl-burst">Burst (optional, with a rate)</label>
        <input
          id="fl-burst"
          type="number"
          step={1}
          inputMode="numeric"
          placeholder="one second’s worth"
          value={draft.burst}
          onInput={(e) => set({ burst: e.currentTarget.value })}
          {...flags('burst')}
        />
      </div>
      <div class="field">
        <label for="fl-concurrency">Concurrency (attempts at once)</label>
        <input
          id="fl-concurrency"
          type="number"
          step={1}
          inputMode="numeric"
          value={draft.concurrency}
          onInput={(e) => set({ concurrency: e.currentTarget.value })}
          {...flags('concurrency')}
        />
      </div>
      <p class="hint wide">At least one of rate and concurrency; an empty field is no limit of that kind.</p>
      <div class="actions wide">
        <button type="submit" aria-disabled={busy}>
          {editing ? 'Save flow limit' : 'Define flow limit'}
        </button>
      </div>
      <div class="wide" id={errorId}>
        <Alert text={error} />
      </div>
    </form>
  );
}
