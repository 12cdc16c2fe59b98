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
} from '@temporalio/workflow';
// Type-only: the workflow bundle never loads activity code, and a renamed activity breaks the build.
import type { Activities } from '../activities';
import type { HttpAttemptOutcome } from '../activities/http';

export interface ServiceCallInput {
  tenantId: string;
  serviceCallId: string;
  /** ISO-8601 instant; the workflow sleeps until then. */
  dueAt: string;
  /** Timeout of the HTTP attempt, so the activity's own timeout can sit above it. */
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

function httpActivities(timeoutMs: number) {
  return proxyActivities<Activities>({
    // Above the HTTP timeout so the attempt ends by its own timer and gets recorded as such.
    startToCloseTimeout: timeoutMs + 10_000,
    heartbeatTimeout: '5 seconds',
    // A retry happens only when the worker died mid-attempt (HTTP failures are results):
    // that is the at-least-once hit a target deduplicates with the idempotency-key header.
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
  });
}

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
    if (cancelRequested) {
      phase = 'cancelling';
      const status = await store.cancelFromWorkflow(ref);
      if (status === 'Cancelled') {
        phase = 'done';
        return 'Cancelled';
      }
    }
    phase = 'due';
    const due = await store.markDue(ref);
    if (!due.proceed) {
      phase = 'done';
      return due.status;
    }
    phase = 'calling';
    const attempt = 1;
    let outcome: HttpAttemptOutcome;
    try {
      outcome = await httpActivities(input.timeoutMs).executeHttpCall({ ...ref, attempt, timeoutMs: input.timeoutMs });
    } catch (err) {
      // The attempt could not be completed (e.g. workers kept dying): record that as the failure.
      const cause = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
      const message = cause?.message ?? (err instanceof Error ? err.message : String(err));
      const now = new Date(Date.now()).toISOString();
      outcome = {
        startedAt: now,
        finishedAt: now,
        statusCode: null,
        latencyMs: null,
        responseSnippet: null,
        truncated: false,
        error: `attempt could not complete: ${message}`,
      };
    }
    phase = 'recording';
    const status = await store.recordOutcome({ ...ref, attempt, outcome });
    phase = 'done';
    return status;
  });
}
