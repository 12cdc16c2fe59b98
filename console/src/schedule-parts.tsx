import type { Punctual, Schedule, TriggerAnswer } from '@punctual/client';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
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

/**
 * Pause or resume (by status), run now, and delete behind a confirm step in place (no dialog):
 * the confirm button takes the focus, Escape or "Keep" puts it back on "Delete".
 */
export function ScheduleActions({ client, schedule, onOutcome }: ActionsProps) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const deleteRef = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  // Moved as soon as the buttons are in the page, before it paints.
  useLayoutEffect(() => {
    if (confirming) confirmRef.current?.focus();
    else if (refocus.current) deleteRef.current?.focus();
    refocus.current = false;
  }, [confirming]);

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
  const keep = () => {
    refocus.current = true;
    setConfirming(false);
  };
  const short = schedule.id.slice(0, 8);
  const paused = schedule.status === 'Paused';

  if (confirming) {
    return (
      <span class="confirm" role="group" aria-label={`Delete schedule ${schedule.id}?`}>
        <span>Delete this schedule? Calls it already made go on.</span>
        <button
          type="button"
          ref={confirmRef}
          class="danger"
          aria-disabled={busy}
          aria-label={`Confirm delete of schedule ${schedule.id}`}
          onKeyDown={(e) => e.key === 'Escape' && keep()}
          onClick={() =>
            void run(async () => {
              await client.schedules.delete(schedule.id);
              return { kind: 'deleted', id: schedule.id };
            })
          }
        >
          Confirm delete
        </button>
        <button type="button" class="secondary" onClick={keep}>
          Keep
        </button>
      </span>
    );
  }
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
      <button
        type="button"
        class="secondary"
        ref={deleteRef}
        aria-disabled={busy}
        aria-label={`Delete schedule ${schedule.id}`}
        onClick={() => setConfirming(true)}
      >
        Delete
      </button>
    </span>
  );
}
