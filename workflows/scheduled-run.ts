import { defineSearchAttributeKey } from '@temporalio/common';
import { proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
// Type-only: the workflow bundle never loads activity code.
import type { Activities, ScheduleRunReport } from '../activities';

/**
 * The action of every Temporal Schedule Punctual derives from a schedule (ADR-0017): one activity
 * that submits the run as an ordinary service call, through the submit command the API uses.
 * The run's idempotency key is made of the schedule and the instant this action was scheduled
 * for, so however often this workflow or its activity is retried, the run is created once.
 */

export interface ScheduledRunInput {
  tenantId: string;
  scheduleId: string;
  /**
   * Set when the schedule's overlap policy is Skip or BufferOne: the action then lasts until its
   * call has ended, so Temporal's overlap policy judges the call, not only its submission.
   */
  awaitCall?: boolean;
}

/** Set by the Temporal server on every workflow a schedule starts: the action's nominal time. */
export const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

// Retried until Postgres answers again: an outage delays a run, it never drops it.
const { submitScheduledRun, callEnded } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds' },
});

/** Longest wait between two looks at a call that has not ended yet. */
const AWAIT_CALL_MAX_WAIT_MS = 30_000;

export async function scheduledRun(input: ScheduledRunInput): Promise<ScheduleRunReport> {
  const info = workflowInfo();
  // Absent only on a workflow started by hand rather than by a schedule: its start is its instant.
  const scheduledAt = info.typedSearchAttributes.get(SCHEDULED_START_TIME) ?? info.startTime;
  const report = await submitScheduledRun({
    tenantId: input.tenantId,
    scheduleId: input.scheduleId,
    scheduledAt: scheduledAt.toISOString(),
  });
  if (input.awaitCall !== true || !report.created) return report;
  // Durable timers between looks, growing: a call waiting for its dueAt or its retries costs a
  // few events an hour, not a busy activity.
  for (let waitMs = 500; !(await callEnded({ tenantId: input.tenantId, serviceCallId: report.serviceCallId }));) {
    await sleep(waitMs);
    waitMs = Math.min(waitMs * 2, AWAIT_CALL_MAX_WAIT_MS);
  }
  return report;
}
