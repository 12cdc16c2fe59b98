import type { Punctual, Schedule, TriggerAnswer } from '@punctual/client';
import { useState } from 'preact/hooks';
import { ConfirmDelete } from './confirm';
import { localTime, utcTime } from './format';
import { callHref } from './router';
import { describeError } from './session';

/** A schedule's cadence as a person reads it: the cron and its zone, or the interval. */
export function specText(spec: Schedule['spec']): string {
  if (spec.cron !== null) return `cron ${spec.cron} (${spec.timezone})`;
  return `every ${spec.intervalSeconds ?? '?'} s`;
}

/** An instant in the browser's zone, with its UTC form beside it (as the call page shows dueAt). */
export function Instant({ iso }: { iso: string }) {
  return (
    <>
      <time dateTime={iso}>{localTime(iso)}</time> <span class="utc">({utcTime(iso)} UTC)</span>
    </>
  );
}

/** The next run, or why there is none. */
export function NextRun({ schedule }: { schedule: Pick<Schedule, 'status' | 'nextRunAts'> }) {
  const [next] = schedule.nextRunAts;
  if (next !== undefined) return <Instant iso={next} />;
  return <span class="hint">{schedule.status === 'Active' ? 'not known yet' : 'none'}</span>;
}

/**
 * Active schedules whose next runs Temporal has not answered yet (right after a create or a
 * resume), or whose next run has passed: worth asking again shortly.
 */
export function awaitingNextRuns(schedules: readonly Pick<Schedule, 'status' | 'nextRunAts'>[]): boolean {
  const now = Date.now();
  return schedules.some((s) => {
    if (s.status !== 'Active') return false;
    const [next] = s.nextRunAts;
    return next === undefined || Date.parse(next) <= now;
  });
}

/** What an action on a schedule answered, for the page's notice. */
export type Outcome =
  | { kind: 'changed'; text: string }
  | { kind: 'triggered'; answer: TriggerAnswer }
  | { kind: 'deleted'; id: string }
  | { kind: 'failed'; text: string };

/** The notice for an outcome: a run made now links to its call. */
export function OutcomeNotice({ outcome }: { outcome: Outcome | null }) {
  if (outcome === null) return null;
  if (outcome.kind === 'failed') {
    return (
      <p role="alert" class="error">
        {outcome.text}
      </p>
    );
  }
  return (
    <p role="status" class="notice">
      {outcome.kind === 'changed' && outcome.text}
      {outcome.kind === 'deleted' && `Deleted schedule ${outcome.id}.`}
      {outcome.kind === 'triggered' && (
        <>
          Run made now: call{' '}
          <a href={callHref(outcome.answer.serviceCallId)} class="mono">
            {outcome.answer.serviceCallId}
          </a>
          .
        </>
      )}
    </p>
  );
}

interface ActionsProps {
  client: Punctual;
  schedule: Pick<Schedule, 'id' | 'status'>;
  onOutcome: (outcome: Outcome) => void;
}

/** Pause or resume (by status), run now, and delete behind a confirm step in place. */
export function ScheduleActions({ client, schedule, onOutcome }: ActionsProps) {
  const [busy, setBusy] = useState(false);

  // Busy buttons are aria-disabled, not disabled: a disabled button would drop the focus.
  const run = async (work: () => Promise<Outcome>) => {
    if (busy) return;
    setBusy(true);
    try {
      onOutcome(await work());
    } catch (err) {
      onOutcome({ kind: 'failed', text: describeError(err) });
    } finally {
      setBusy(false);
    }
  };
  const short = schedule.id.slice(0, 8);
  const paused = schedule.status === 'Paused';

  return (
    <span class="row-actions">
      {schedule.status !== 'Ended' && (
        // One button that turns from Pause into Resume and back, so the focus stays on it.
        <button
          type="button"
          class="secondary"
          aria-disabled={busy}
          aria-label={`${paused ? 'Resume' : 'Pause'} schedule ${schedule.id}`}
          onClick={() =>
            void run(async () => {
              if (paused) await client.schedules.resume(schedule.id);
              else await client.schedules.pause(schedule.id);
              return { kind: 'changed', text: `${paused ? 'Resumed' : 'Paused'} schedule ${short}.` };
            })
          }
        >
          {paused ? 'Resume' : 'Pause'}
        </button>
      )}
      <button
        type="button"
        class="secondary"
        aria-disabled={busy}
        aria-label={`Run now: schedule ${schedule.id}`}
        onClick={() =>
          void run(async () => ({ kind: 'triggered', answer: await client.schedules.trigger(schedule.id) }))
        }
      >
        Run now
      </button>
      <ConfirmDelete
        what={`schedule ${schedule.id}`}
        question="Delete this schedule? Calls it already made go on."
        busy={busy}
        onConfirm={() =>
          void run(async () => {
            await client.schedules.delete(schedule.id);
            return { kind: 'deleted', id: schedule.id };
          })
        }
      />
    </span>
  );
}
