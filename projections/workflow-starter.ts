import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { ServiceCallSubmitted, StoredEvent } from '../core/events';
import { workflowIdFor } from '../core/ids';
import { inParallel } from '../core/in-parallel';
import type { Logger } from '../core/logger';
import { cancelSignal, rescheduledSignal, SERVICE_CALL_REVISION, serviceCall } from '../workflows';
import type { CallbackDeliveryPolicy } from '../workflows/service-call';
import { DUE_AT, STATUS, TAGS, TENANT } from '../workflows/search-attributes';
import type { LogConsumer } from './relay';

export const STARTER_NAME = 'workflow-starter';

interface StarterOptions {
  client: Client;
  /**
   * A client on the connection of a worker that polls taskQueue in this process: starts go
   * through it with requestEagerStart, so the first workflow task comes back with the start's
   * answer (no matching round trip, no wait for a poll). The server falls back to an ordinary
   * start when the worker has no free slot.
   */
  eagerClient?: Client;
  taskQueue: string;
  log: Logger;
  /** How many calls are handed to Temporal at once. */
  concurrency?: number;
  /** How long before dueAt the workflow's timer fires (config.timerLeadMs). */
  wakeEarlyMs?: number;
  /** How a call's callback is delivered (config.callback); given to the workflows of calls with one. */
  callbackPolicy: CallbackDeliveryPolicy;
  /**
   * How long before dueAt a call with flowKeys reserves its send slots (config.flow.reserveAheadMs,
   * ADR-0018); given to the workflows of calls with flowKeys. Absent or 0: they do not.
   */
  flowReserveAheadMs?: number;
}

/** What starting a call's workflow needs: where, and the timer lead (config.timerLeadMs). */
export type StartTarget = Pick<
  StarterOptions,
  'client' | 'eagerClient' | 'taskQueue' | 'wakeEarlyMs' | 'callbackPolicy' | 'flowReserveAheadMs'
>;

/**
 * Starts the workflow of the call that `submitted` recorded: the one place that says how, for
 * the starter and the reconciler alike. USE_EXISTING makes a repeat start of a running workflow
 * a no-op; `reusePolicy` decides about a closed one (the starter refuses it, the reconciler lets
 * a terminated or failed run be replaced: ADR-0013).
 */
export async function startCallWorkflow(
  target: StartTarget,
  submitted: ServiceCallSubmitted,
  reusePolicy: 'REJECT_DUPLICATE' | 'ALLOW_DUPLICATE_FAILED_ONLY',
  /** The call's dueAt as its state holds it (a reschedule moves it); default: as submitted. */
  dueAt: string = submitted.data.dueAt,
): Promise<void> {
  await (target.eagerClient ?? target.client).workflow.start(serviceCall, {
    workflowId: workflowIdFor(submitted.tenantId, submitted.aggregateId),
    taskQueue: target.taskQueue,
    requestEagerStart: target.eagerClient !== undefined,
    args: [
      {
        tenantId: submitted.tenantId,
        serviceCallId: submitted.aggregateId,
        dueAt,
        timeoutMs: submitted.data.timeoutMs,
        wakeEarlyMs: target.wakeEarlyMs ?? 0,
        revision: SERVICE_CALL_REVISION,
        ...(submitted.data.callback === undefined ? {} : { callback: target.callbackPolicy }),
        ...((submitted.data.flowKeys?.length ?? 0) > 0 && (target.flowReserveAheadMs ?? 0) > 0
          ? { flowReserveAheadMs: target.flowReserveAheadMs }
          : {}),
      },
    ],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: reusePolicy,
    // Findable in the Web UI and with `temporal workflow list --query`; the memo is a
    // redacted summary (the event already holds secret header values as [REDACTED]).
    typedSearchAttributes: [
      { key: TENANT, value: submitted.tenantId },
      { key: STATUS, value: 'Scheduled' },
      { key: TAGS, value: submitted.data.tags },
      { key: DUE_AT, value: new Date(dueAt) },
    ],
    memo: {
      request: submitted.data.request,
      tags: submitted.data.tags,
      correlationId: submitted.correlationId,
    },
  });
}

/**
 * Turns recorded events into Temporal commands: ServiceCallSubmitted starts the call's workflow,
 * ServiceCallCancelled and ServiceCallRescheduled wake it. All are idempotent (USE_EXISTING + REJECT_DUPLICATE on start;
 * a signal to a finished workflow is dropped), because a batch repeats after a crash.
 */
export function createWorkflowStarter(opts: StarterOptions): LogConsumer {
  async function handleEvent(event: StoredEvent): Promise<void> {
    const workflowId = workflowIdFor(event.tenantId, event.aggregateId);
    const published = (what: string) =>
      opts.log.info(
        {
          tenantId: event.tenantId,
          serviceCallId: event.aggregateId,
          workflowId,
          correlationId: event.correlationId,
          causationId: event.messageId,
        },
        `outbox published: ${what}`,
      );
    if (event.type === 'ServiceCallSubmitted') {
      try {
        await startCallWorkflow(opts, event, 'REJECT_DUPLICATE');
        published('workflow started');
      } catch (err) {
        // Closed already (within retention): the call ran; nothing to do.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    } else if (event.type === 'ServiceCallCancelled' && event.data.source === 'api') {
      try {
        await opts.client.workflow.getHandle(workflowId).signal(cancelSignal);
        published('cancel signalled');
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    } else if (event.type === 'ServiceCallRescheduled') {
      // A nudge only: the workflow reads the new dueAt from the store (ADR-0012).
      try {
        await opts.client.workflow.getHandle(workflowId).signal(rescheduledSignal);
        published('reschedule signalled');
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
  }

  return {
    name: STARTER_NAME,
    transactional: false,
    async handle(batch) {
      // Events of one call stay in order (start before cancel); different calls go in parallel.
      const byCall = new Map<string, StoredEvent[]>();
      for (const e of batch) {
        const key = `${e.tenantId}/${e.aggregateId}`;
        const list = byCall.get(key);
        if (list === undefined) byCall.set(key, [e]);
        else list.push(e);
      }
      await inParallel([...byCall.values()], opts.concurrency ?? 32, async (calls) => {
        for (const e of calls) await handleEvent(e);
      });
    },
  };
}
