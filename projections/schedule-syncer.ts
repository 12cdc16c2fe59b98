import {
  ScheduleNotFoundError as TemporalScheduleNotFoundError,
  ScheduleAlreadyRunning,
  type Client,
  type ScheduleOptions,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleOverlapPolicy,
} from '@temporalio/client';
import type { AnyEvent } from '../core/events';
import { scheduledRunWorkflowIdFor, temporalScheduleIdFor } from '../core/ids';
import type { Logger } from '../core/logger';
import { SCHEDULE_AGGREGATE_TYPE, type OverlapPolicy, type ScheduleState } from '../core/schedule';
import { readSchedule } from '../core/schedule-commands';
import { scheduledRun } from '../workflows';
import type { LogConsumer } from './relay';

/**
 * Derives each schedule's Temporal Schedule from its stream (ADR-0017). On any event of a
 * schedule the syncer reads the stream's state as it is now and makes the Temporal Schedule say
 * the same (create, update, pause, delete): applying the state, not the event, converges
 * whatever was lost or repeated. Its checkpoint moves only after Temporal answered, so a change
 * that did not reach Temporal (relay killed, Temporal away) is applied again on the next round.
 */

export const SCHEDULE_SYNCER_NAME = 'schedule-syncer';

/**
 * How late a missed action may still be taken when Temporal (or its scheduler) was away: a run is
 * lost only after an outage this long. Each run's idempotency key keeps a caught-up one single.
 */
export const SCHEDULE_CATCHUP_WINDOW = '1 hour';

const OVERLAP: Record<OverlapPolicy, ScheduleOverlapPolicy> = {
  Skip: 'SKIP',
  BufferOne: 'BUFFER_ONE',
  AllowAll: 'ALLOW_ALL',
};

export interface ScheduleTarget {
  client: Client;
  /** Where the runs' workflows go: the workers' task queue. */
  taskQueue: string;
}

type Options = ScheduleOptions<ScheduleOptionsStartWorkflowAction<typeof scheduledRun>>;

/** The Temporal Schedule a schedule's state says there should be. */
export function temporalScheduleOptions(target: ScheduleTarget, state: ScheduleState): Options {
  const { spec } = state;
  return {
    scheduleId: temporalScheduleIdFor(state.tenantId, state.id),
    spec: {
      ...(spec.cron === null ? {} : { cronExpressions: [spec.cron] }),
      ...(spec.intervalSeconds === null ? {} : { intervals: [{ every: spec.intervalSeconds * 1000 }] }),
      timezone: spec.timezone,
      ...(spec.startAt === null ? {} : { startAt: new Date(spec.startAt) }),
      ...(spec.endAt === null ? {} : { endAt: new Date(spec.endAt) }),
      ...(spec.jitterSeconds > 0 ? { jitter: spec.jitterSeconds * 1000 } : {}),
    },
    action: {
      type: 'startWorkflow',
      workflowType: scheduledRun,
      workflowId: scheduledRunWorkflowIdFor(state.tenantId, state.id),
      taskQueue: target.taskQueue,
      args: [{ tenantId: state.tenantId, scheduleId: state.id, awaitCall: state.overlap !== 'AllowAll' }],
    },
    policies: { overlap: OVERLAP[state.overlap], catchupWindow: SCHEDULE_CATCHUP_WINDOW },
    state: { paused: state.status === 'Paused' },
    memo: { tenantId: state.tenantId, scheduleId: state.id },
  };
}

/**
 * Makes the Temporal Schedule match `state`; idempotent, so repeating it is always safe. With
 * `createOnly` (the reconciler, whose state may be older than the syncer's) an existing Temporal
 * Schedule is left as it is.
 */
export async function syncTemporalSchedule(
  target: ScheduleTarget,
  state: ScheduleState,
  opts: { createOnly?: boolean } = {},
): Promise<'deleted' | 'absent' | 'updated' | 'created' | 'exists'> {
  const handle = target.client.schedule.getHandle(temporalScheduleIdFor(state.tenantId, state.id));
  if (state.status === 'Deleted') {
    try {
      await handle.delete();
      return 'deleted';
    } catch (err) {
      if (err instanceof TemporalScheduleNotFoundError) return 'absent';
      throw err;
    }
  }
  const options = temporalScheduleOptions(target, state);
  const { scheduleId: _id, memo: _memo, ...updatable } = options;
  if (opts.createOnly !== true) {
    try {
      await handle.update(() => ({ ...updatable, state: { paused: state.status === 'Paused' } }));
      return 'updated';
    } catch (err) {
      if (!(err instanceof TemporalScheduleNotFoundError)) throw err;
    }
  }
  try {
    await target.client.schedule.create(options);
    return 'created';
  } catch (err) {
    // Created meanwhile (the api's fast path): update it to this state instead.
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    if (opts.createOnly === true) return 'exists';
    await handle.update(() => ({ ...updatable, state: { paused: state.status === 'Paused' } }));
    return 'updated';
  }
}

export function createScheduleSyncer(opts: ScheduleTarget & { log: Logger }): LogConsumer {
  return {
    name: SCHEDULE_SYNCER_NAME,
    transactional: false,
    async handle(batch: AnyEvent[], db) {
      // One sync per schedule and batch, of its state now: later events are in that state already.
      const touched = new Map<string, AnyEvent>();
      for (const e of batch) {
        if (e.aggregateType === SCHEDULE_AGGREGATE_TYPE) touched.set(`${e.tenantId}/${e.aggregateId}`, e);
      }
      for (const event of touched.values()) {
        const { state } = await readSchedule(db, event.tenantId, event.aggregateId);
        if (state === undefined) continue;
        const what = await syncTemporalSchedule(opts, state);
        opts.log.info(
          {
            tenantId: state.tenantId,
            scheduleId: state.id,
            version: state.version,
            status: state.status,
            correlationId: event.correlationId,
            causationId: event.messageId,
          },
          `temporal schedule ${what}`,
        );
      }
    },
  };
}
