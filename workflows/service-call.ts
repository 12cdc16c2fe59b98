import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
// Type-only: the workflow bundle never loads activity code, and a renamed activity breaks the build.
import type { Activities, AttemptReport } from '../activities';
import { STATUS } from './search-attributes';

export interface ServiceCallInput {
  tenantId: string;
  serviceCallId: string;
  /** ISO-8601 instant; the workflow sleeps until then. */
  dueAt: string;
  /** Timeout of one HTTP attempt, so the activity's own timeout can sit above it. */
  timeoutMs: number;
}

export type ServiceCallOutcome = 'Succeeded' | 'Failed' | 'Cancelled' | 'Running' | 'Scheduled';

/** Sent by the relay when ServiceCallCancelled is recorded: stop sleeping. */
export const cancelSignal = defineSignal('cancel');
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
    nonRetryableErrorTypes: ['ServiceCallNotFound'],
  },
});

function attemptActivities(timeoutMs: number) {
  return proxyActivities<Activities>({
    // Room for the HTTP timeout, the signing-secret read and a few tries at recording.
    startToCloseTimeout: timeoutMs + 60_000,
    heartbeatTimeout: '5 seconds',
    // A retry happens only when an attempt could not finish (the worker died, the database
    // was gone): HTTP failures are results. A repeated attempt that reaches the target is the
    // at-least-once hit a target deduplicates with the idempotency-key header.
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '10 seconds',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ['ServiceCallNotFound'],
    },
  });
}

const TERMINAL: ReadonlySet<ServiceCallOutcome> = new Set(['Succeeded', 'Failed', 'Cancelled']);
/** Wait before running an attempt again that could not be recorded at all. */
const NOT_RECORDED_RETRY_MS = 30_000;

export async function serviceCall(input: ServiceCallInput): Promise<ServiceCallOutcome> {
  const ref = { tenantId: input.tenantId, serviceCallId: input.serviceCallId };
  let phase = 'sleeping';
  let cancelRequested = false;
  setHandler(phaseQuery, () => phase);
  setHandler(cancelSignal, () => {
    cancelRequested = true;
  });

  try {
    const wait = new Date(input.dueAt).getTime() - Date.now();
    if (wait > 0) await condition(() => cancelRequested, wait);
  } catch (err) {
    // `temporal workflow cancel` during the sleep means the same as the API's cancel.
    if (!isCancellation(err)) throw err;
    cancelRequested = true;
  }

  // From here on the call is not cancellable: once due, it runs and is recorded.
  return CancellationScope.nonCancellable(async () => {
    const finish = (status: ServiceCallOutcome): ServiceCallOutcome => {
      phase = 'done';
      upsertSearchAttributes([{ key: STATUS, value: status }]);
      return status;
    };
    if (cancelRequested) {
      phase = 'cancelling';
      const status = await store.cancelFromWorkflow(ref);
      if (status === 'Cancelled') return finish('Cancelled');
    }
    const { runAttempt } = attemptActivities(input.timeoutMs);
    // Rides along with the first activity's command: no extra round trip.
    upsertSearchAttributes([{ key: STATUS, value: 'Running' }]);
    let attempt = 1;
    for (;;) {
      phase = `attempt ${attempt}`;
      let report: AttemptReport;
      try {
        report = await runAttempt({ ...ref, attempt });
      } catch (err) {
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable) {
          throw err;
        }
        const reason = err instanceof ActivityFailure ? (err.cause?.message ?? err.message) : String(err);
        report = await store.recordLostAttempt({ ...ref, attempt, reason });
      }
      if (TERMINAL.has(report.status)) return finish(report.status);
      if (report.status === 'Running' && report.retryInMs !== null) {
        // The attempt was recorded as failed and another is due: that one is the next attempt.
        attempt++;
        phase = `waiting to retry (attempt ${attempt})`;
        await sleep(report.retryInMs);
      } else {
        // Not due yet by the worker's clock, or the attempt could not even be recorded: the
        // same attempt again later. A workflow only ends once its call has.
        phase = `waiting to run attempt ${attempt} again`;
        await sleep(report.retryInMs ?? NOT_RECORDED_RETRY_MS);
      }
    }
  });
}
