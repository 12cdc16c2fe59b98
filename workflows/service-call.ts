import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
// Type-only: the workflow bundle never loads activity code, and a renamed activity breaks the build.
import type { Activities, AttemptReport } from '../activities';
import { FailureType } from './failure-types';
import { DUE_AT, STATUS } from './search-attributes';

export interface ServiceCallInput {
  tenantId: string;
  serviceCallId: string;
  /** ISO-8601 instant; the workflow sleeps until then. */
  dueAt: string;
  /** Timeout of one HTTP attempt, so the activity's own timeout can sit above it. */
  timeoutMs: number;
  /**
   * How long before dueAt the timer fires (absent: 0). The first attempt then waits out the rest
   * in the worker before it records DueTimeReached and sends, so the time Temporal takes to hand
   * the fired timer to a worker is spent before dueAt rather than after it.
   */
  wakeEarlyMs?: number;
  /**
   * Which revision of this workflow's commands the run follows (absent: 0). Set by the starter to
   * SERVICE_CALL_REVISION; a run keeps the revision it started with, so replay stays
   * deterministic without a patch marker, which the SDK also records as a search-attribute upsert
   * (a visibility write per call on the server). 1: attempts are local activities without
   * consulting LOCAL_ATTEMPTS_PATCH, and no `Running` status upsert before the first attempt.
   * 2: a `rescheduled` nudge makes the sleeping workflow read its dueAt from the event store
   * (readSchedule) and sleep again until then; a first attempt that finds the call not due yet
   * goes back to that sleep (ADR-0012). 3: a call with `callback` delivers it once it has ended
   * (ADR-0016); only revision 3 runs are started with one. 4: attempts obey flow limits
   * (ADR-0018): an attempt the limits hold back reports `throttle`, and the workflow sleeps a
   * durable timer for the suggested wait and runs the same attempt again. 5: that wait ends early
   * on `flowLimitChanged` (a limit of the call was changed or deleted), so the admission may
   * suggest waiting until a rate key's send slot (FLOW_MAX_SLOT_WAIT_MS) instead of asking again
   * every FLOW_MAX_WAIT_MS. 6: a call with `flowReserveAheadMs` reserves its rate keys' send
   * slots that long before dueAt (or at start, when it is due sooner) and sleeps until its slot,
   * so that calls due at one instant under a rate wake at the rate instead of all at dueAt.
   */
  revision?: number;
  /**
   * Set by the starter (FLOW_RESERVE_AHEAD_MS) on calls with flowKeys, from revision 6: how long
   * before dueAt the workflow reserves the call's send slots (ADR-0018). Absent or 0: it does not.
   */
  flowReserveAheadMs?: number;
  /**
   * The call has a callback: how to deliver it (config.callback, as the starter had it). Absent
   * on calls without one, which end as before.
   */
  callback?: CallbackDeliveryPolicy;
}

export interface CallbackDeliveryPolicy {
  maxAttempts: number;
  initialIntervalMs: number;
  maxIntervalMs: number;
  timeoutMs: number;
}

/** The revision new runs start with (see ServiceCallInput.revision). */
export const SERVICE_CALL_REVISION = 6;

export type ServiceCallOutcome = 'Succeeded' | 'Failed' | 'Cancelled' | 'Running' | 'Scheduled';

/** Sent by the relay when ServiceCallCancelled is recorded: stop sleeping. */
export const cancelSignal = defineSignal('cancel');
/**
 * Sent by the relay when ServiceCallRescheduled is recorded. It carries nothing: the workflow
 * reads the call's dueAt from the event store, the only source of truth for it (ADR-0012).
 */
export const rescheduledSignal = defineSignal('rescheduled');
/** A flow limit of the call was changed or deleted while it waited: ask again now (revision 5). */
export const flowLimitChangedSignal = defineSignal('flowLimitChanged');
/** Where the workflow is: useful from `temporal workflow query`. */
export const phaseQuery = defineQuery<string>('phase');

// Event-store activities retry until Postgres answers again: an outage must delay a call, never
// lose it. Only a call that does not exist is final.
const store = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes: [FailureType.NotFound],
  },
});

// A retry happens only when an attempt could not finish after its request may have left (the
// worker died, the attempt timed out): HTTP failures are results, and a failure before sending is
// AttemptNotSent, which the workflow handles without counting it. A repeated attempt that reaches
// the target is the at-least-once hit a target deduplicates with the idempotency-key header.
const ATTEMPT_RETRY = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  maximumAttempts: 5,
  nonRetryableErrorTypes: [FailureType.NotFound, FailureType.NotSent],
};

/** Longest wait between two tries of an attempt that could not be sent. */
const NOT_SENT_MAX_WAIT_MS = 30_000;

/**
 * Workflows that started an attempt before attempts became local activities replay it as the
 * activity it was; every later one takes the local path.
 */
const LOCAL_ATTEMPTS_PATCH = 'attempts-as-local-activities';

function attemptActivities(timeoutMs: number, revision: number) {
  // Room for the HTTP timeout, the wait for dueAt after an early timer, and for recording while
  // the database is away (the outcome is kept in memory meanwhile: timing out would mean sending
  // again). A dead worker is noticed by heartbeat or workflow task timeouts, not by this one.
  const startToCloseTimeout = timeoutMs + 5 * 60_000;
  // Revision 0 runs decide by the patch, as they did when they started.
  if (revision >= 1 || patched(LOCAL_ATTEMPTS_PATCH)) {
    // A local activity runs in the workflow task that decided it: no activity task to schedule,
    // dispatch, start and complete, and no second workflow task (measured: half the Temporal
    // server's CPU per call, bench/README.md). A dead worker shows as a workflow task timeout,
    // and the attempt runs again, as it would after a heartbeat timeout.
    return proxyLocalActivities<Activities>({ startToCloseTimeout, retry: ATTEMPT_RETRY });
  }
  return proxyActivities<Activities>({ startToCloseTimeout, heartbeatTimeout: '5 seconds', retry: ATTEMPT_RETRY });
}

/**
 * The ApplicationFailure an attempt failed with. A local activity's failure reaches the workflow
 * as it was thrown; an activity's (workflows from before LOCAL_ATTEMPTS_PATCH) as the cause of an
 * ActivityFailure.
 */
function applicationFailureOf(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause;
  return undefined;
}

/**
 * Callback deliveries are ordinary activities: each attempt is recorded before the activity fails,
 * and Temporal's retry policy is the backoff between attempts, as long as the activity says the
 * callback is not settled (it settles it at maxAttempts). A dead worker is noticed by heartbeat.
 */
function callbackActivities(policy: CallbackDeliveryPolicy) {
  return proxyActivities<Activities>({
    startToCloseTimeout: policy.timeoutMs + 30_000,
    heartbeatTimeout: '5 seconds',
    retry: {
      initialInterval: policy.initialIntervalMs,
      backoffCoefficient: 2,
      maximumInterval: policy.maxIntervalMs,
      nonRetryableErrorTypes: [FailureType.NotFound],
    },
  });
}

const TERMINAL: ReadonlySet<ServiceCallOutcome> = new Set(['Succeeded', 'Failed', 'Cancelled']);
// Reserving send slots ahead is an optimisation: the attempt asks for admission anyway, so a
// database that does not answer within a few tries leaves the call to sleep until dueAt.
const flowAhead = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', maximumAttempts: 3 },
});

/** Wait before running an attempt again that could not be recorded at all. */
const NOT_RECORDED_RETRY_MS = 30_000;

export async function serviceCall(input: ServiceCallInput): Promise<ServiceCallOutcome> {
  const ref = { tenantId: input.tenantId, serviceCallId: input.serviceCallId };
  const revision = input.revision ?? 0;
  let phase = 'sleeping';
  let cancelRequested = false;
  let nudged = false;
  /** The workflow's copy of the call's dueAt: from its input, then as readSchedule returns it. */
  let dueAt = input.dueAt;
  setHandler(phaseQuery, () => phase);
  setHandler(cancelSignal, () => {
    cancelRequested = true;
  });
  // Registered in every revision (a handler adds no command); only revision 2 acts on it.
  setHandler(rescheduledSignal, () => {
    nudged = true;
  });
  let flowChanged = false;
  // Registered in every revision too; revisions 5 and 6 wait on it.
  setHandler(flowLimitChangedSignal, () => {
    flowChanged = true;
  });

  /** Revision 6: how long before dueAt the call's send slots are reserved (0: never). */
  const reserveAheadMs = revision >= 6 ? (input.flowReserveAheadMs ?? 0) : 0;
  /** The dueAt the slots were reserved for, and the instant to wake for them (undefined: dueAt). */
  let reservedFor: string | undefined;
  let slotWakeMs: number | undefined;
  const reserveSlots = async (): Promise<number | undefined> => {
    phase = 'reserving flow slots';
    try {
      const { wakeAt } = await flowAhead.reserveFlowSlots(ref);
      return wakeAt === null ? undefined : new Date(wakeAt).getTime();
    } catch (err) {
      if (isCancellation(err)) throw err;
      return undefined;
    } finally {
      phase = 'sleeping';
    }
  };

  /**
   * Revision 2: sleeps until dueAt less the timer lead; a nudge ends the sleep, the dueAt is read
   * again from the store, and the sleep starts over from it. Returns when the timer fired, the
   * call is no longer Scheduled, or (with `cancellable`) a cancel arrived. Revision 6, with
   * `flowReserveAheadMs`: wakes that long before dueAt (at once when it is nearer) to reserve the
   * call's send slots, then sleeps until the later of dueAt and its slot; a changed limit
   * (`flowLimitChanged`) gave the slots up, so it reserves again, or goes if the call is due.
   */
  const sleepUntilDue = async (cancellable: boolean): Promise<void> => {
    const lead = input.wakeEarlyMs ?? 0;
    const interrupted = () => (cancellable && cancelRequested) || nudged;
    for (;;) {
      const dueMs = new Date(dueAt).getTime();
      if (reserveAheadMs > 0 && reservedFor !== dueAt && dueMs - Date.now() - lead > 0) {
        const untilReserve = dueMs - reserveAheadMs - Date.now();
        if (untilReserve > 0) await condition(interrupted, untilReserve);
        if (!interrupted()) {
          reservedFor = dueAt;
          flowChanged = false;
          slotWakeMs = await reserveSlots();
        }
      }
      if (!interrupted()) {
        const wait = Math.max(dueMs, slotWakeMs ?? 0) - Date.now() - lead;
        const slotGone = () => slotWakeMs !== undefined && flowChanged;
        if (wait > 0) await condition(() => interrupted() || slotGone(), wait);
        if (!interrupted() && slotGone()) {
          flowChanged = false;
          reservedFor = undefined;
          slotWakeMs = undefined;
          continue;
        }
      }
      if ((cancellable && cancelRequested) || !nudged) return;
      nudged = false;
      phase = 'reading the due time';
      const schedule = await store.readSchedule(ref);
      phase = 'sleeping';
      if (schedule.status !== 'Scheduled') return;
      if (schedule.dueAt !== dueAt) {
        dueAt = schedule.dueAt;
        upsertSearchAttributes([{ key: DUE_AT, value: new Date(dueAt) }]);
        // Reserved for the old dueAt: reserved again for the new one, unless it is due already.
        slotWakeMs = undefined;
      }
    }
  };

  try {
    if (revision >= 2) await sleepUntilDue(true);
    else {
      const wait = new Date(input.dueAt).getTime() - Date.now() - (input.wakeEarlyMs ?? 0);
      if (wait > 0) await condition(() => cancelRequested, wait);
    }
  } catch (err) {
    // `temporal workflow cancel` during the sleep means the same as the API's cancel.
    if (!isCancellation(err)) throw err;
    cancelRequested = true;
  }

  // From here on the call is not cancellable: once due, it runs and is recorded.
  return CancellationScope.nonCancellable(async () => {
    const finish = async (status: ServiceCallOutcome): Promise<ServiceCallOutcome> => {
      phase = 'done';
      upsertSearchAttributes([{ key: STATUS, value: status }]);
      if (input.callback !== undefined) {
        phase = 'delivering the callback';
        const { maxAttempts, timeoutMs } = input.callback;
        await callbackActivities(input.callback).deliverCallback({ ...ref, maxAttempts, timeoutMs });
        phase = 'done';
      }
      return status;
    };
    if (cancelRequested) {
      phase = 'cancelling';
      const status = await store.cancelFromWorkflow(ref);
      if (status === 'Cancelled') return await finish('Cancelled');
    }
    const { runAttempt } = attemptActivities(input.timeoutMs, revision);
    // Revision 0 only: a local attempt's commands reach the server when its workflow task ends,
    // after the attempt, so this status was hardly ever seen, and it cost a visibility write.
    // From revision 1 a call shows Running in Temporal while it waits to retry.
    if (revision < 1) upsertSearchAttributes([{ key: STATUS, value: 'Running' }]);
    let attempt = 1;
    let notSent = 0;
    /** Revision 4: when flow limits first held the current attempt back. */
    let throttledSince: string | undefined;
    for (;;) {
      phase = `attempt ${attempt}`;
      let report: AttemptReport;
      try {
        // Only revision 4 runs ask for admission: older ones would not understand a throttle.
        // A change arriving from here on ends the wait the answer suggests (revision 5).
        flowChanged = false;
        const flow = {
          ...(throttledSince === undefined ? {} : { since: throttledSince }),
          ...(revision >= 5 ? { wakeable: true } : {}),
        };
        report = await runAttempt(revision >= 4 ? { ...ref, attempt, flow } : { ...ref, attempt });
        notSent = 0;
      } catch (err) {
        const failure = applicationFailureOf(err);
        if (failure?.type === FailureType.NotSent) {
          // Nothing left the worker: not an attempt. The same one again once the database is back.
          notSent++;
          phase = `attempt ${attempt} not sent (${notSent} tries); waiting to try again`;
          await sleep(Math.min(NOT_SENT_MAX_WAIT_MS, 500 * 2 ** Math.min(notSent, 6)));
          continue;
        }
        if (failure?.nonRetryable === true) throw err;
        const cause = err instanceof ActivityFailure ? (err.cause ?? err) : err;
        const reason = cause instanceof Error ? cause.message : String(cause);
        report = await store.recordLostAttempt({ ...ref, attempt, reason });
      }
      if (report.throttle !== undefined) {
        // Nothing was sent: the same attempt once the limits may admit it. One timer per wait,
        // never a poll per token: the wait is the one the limits suggested (ADR-0018).
        throttledSince ??= report.throttle.since;
        phase = `attempt ${attempt} waiting for flow limits ${report.throttle.waitingFor.join(', ')}`;
        if (revision >= 5) await condition(() => flowChanged, report.throttle.waitMs);
        else await sleep(report.throttle.waitMs);
        continue;
      }
      throttledSince = undefined;
      if (TERMINAL.has(report.status)) return await finish(report.status);
      if (report.status === 'Running' && report.retryInMs !== null) {
        // The attempt was recorded as failed and another is due: that one is the next attempt.
        attempt++;
        phase = `waiting to retry (attempt ${attempt})`;
        if (revision >= 1 && attempt === 2) upsertSearchAttributes([{ key: STATUS, value: 'Running' }]);
        await sleep(report.retryInMs);
      } else if (revision >= 2 && report.status === 'Scheduled' && report.retryInMs !== null) {
        // Not due yet: the timer fired long before dueAt by the worker's clock, or the call was
        // rescheduled to later while its attempt waited. Back to the sleep a nudge can end.
        dueAt = new Date(Date.now() + report.retryInMs).toISOString();
        phase = 'sleeping';
        await sleepUntilDue(false);
      } else {
        // Not due yet by the worker's clock, or the attempt could not even be recorded: the
        // same attempt again later. A workflow only ends once its call has.
        phase = `waiting to run attempt ${attempt} again`;
        await sleep(report.retryInMs ?? NOT_RECORDED_RETRY_MS);
      }
    }
  });
}
