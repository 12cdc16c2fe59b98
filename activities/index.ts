import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import { handleCommand, nextEventEnvelope, type Deps } from '../core/commands';
import type { CallResult, NewEvent } from '../core/events';
import { readStream } from '../core/event-store';
import { deterministicMessageId, streamIdFor } from '../core/ids';
import type { Logger } from '../core/logger';
import type { Status } from '../core/service-call';
import { performHttpRequest, type HttpAttemptOutcome } from './http';

export interface ServiceCallRef {
  tenantId: string;
  serviceCallId: string;
}

export interface ActivityDeps extends Deps {
  http: Dispatcher;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
}

/** Failure types raised by activities; the ones listed as non-retryable are final. */
export const FailureType = {
  NotFound: 'ServiceCallNotFound',
  NotDueYet: 'NotDueYet',
} as const;
export const NON_RETRYABLE_FAILURE_TYPES = [FailureType.NotFound];

/** Longest the due check waits in-process for a timer that fired a little early. */
const MAX_EARLY_WAIT_MS = 20_000;

export function isSuccessStatus(statusCode: number | null): boolean {
  return statusCode !== null && statusCode >= 200 && statusCode < 300;
}

export function createActivities(deps: ActivityDeps) {
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  function notFound(ref: ServiceCallRef): never {
    throw ApplicationFailure.create({
      type: FailureType.NotFound,
      message: `service call ${ref.tenantId}/${ref.serviceCallId} has no events`,
      nonRetryable: true,
    });
  }

  return {
    /**
     * Records DueTimeReached once the due time has really come (a timer can fire a hair early,
     * and the server's clock is not ours). Returns whether the HTTP attempt should run.
     */
    async markDue(ref: ServiceCallRef): Promise<{ proceed: boolean; status: Status }> {
      const first = (await readStream(deps.db, streamIdFor(ref.tenantId, ref.serviceCallId)))[0];
      if (first === undefined) notFound(ref);
      if (first.type === 'ServiceCallSubmitted') {
        const early = new Date(first.data.dueAt).getTime() - now().getTime();
        if (early > 0) {
          if (early > MAX_EARLY_WAIT_MS) {
            throw ApplicationFailure.retryable(`due in ${early} ms; not yet due`, FailureType.NotDueYet);
          }
          await sleep(early);
        }
      }
      return handleCommand(deps, ref.tenantId, ref.serviceCallId, (state, history) => {
        if (state === undefined) notFound(ref);
        const messageId = deterministicMessageId(ref.serviceCallId, 'due');
        if (history.some((e) => e.messageId === messageId)) {
          return { events: [], result: { proceed: state.status === 'Running', status: state.status } };
        }
        if (state.status !== 'Scheduled') return { events: [], result: { proceed: false, status: state.status } };
        const at = now();
        const event: NewEvent = {
          ...nextEventEnvelope(state, history, messageId, at),
          type: 'DueTimeReached',
          data: { reachedAt: at.toISOString() },
        };
        deps.log.info({ tenantId: ref.tenantId, serviceCallId: ref.serviceCallId }, 'due time reached');
        return { events: [event], result: { proceed: true, status: 'Running' } };
      });
    },

    /** One HTTP attempt, exactly as submitted. HTTP-level failures are results, not errors. */
    async executeHttpCall(ref: ServiceCallRef & { attempt: number; timeoutMs: number }): Promise<HttpAttemptOutcome> {
      const first = (await readStream(deps.db, streamIdFor(ref.tenantId, ref.serviceCallId)))[0];
      if (first === undefined || first.type !== 'ServiceCallSubmitted') notFound(ref);
      const ctx = Context.current();
      // Heartbeats let Temporal notice a dead worker long before the start-to-close timeout.
      const beat = setInterval(() => ctx.heartbeat(), 1_000);
      try {
        const log = { tenantId: ref.tenantId, serviceCallId: ref.serviceCallId, attempt: ref.attempt };
        deps.log.info({ ...log, method: first.data.request.method }, 'http attempt started');
        const outcome = await performHttpRequest(first.data.request, {
          timeoutMs: ref.timeoutMs,
          dispatcher: deps.http,
          signal: ctx.cancellationSignal,
          extraHeaders: { 'idempotency-key': ref.serviceCallId },
        });
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('http attempt cancelled');
        deps.log.info(
          { ...log, statusCode: outcome.statusCode, latencyMs: outcome.latencyMs, error: outcome.error },
          'http attempt finished',
        );
        return outcome;
      } finally {
        clearInterval(beat);
      }
    },

    /** Appends the terminal event; a retry after a crash finds it already there. */
    async recordOutcome(ref: ServiceCallRef & { attempt: number; outcome: HttpAttemptOutcome }): Promise<Status> {
      return handleCommand(deps, ref.tenantId, ref.serviceCallId, (state, history) => {
        if (state === undefined) notFound(ref);
        const messageId = deterministicMessageId(ref.serviceCallId, `outcome:${ref.attempt}`);
        if (state.status !== 'Running' || history.some((e) => e.messageId === messageId)) {
          return { events: [], result: state.status };
        }
        const { outcome } = ref;
        const succeeded = isSuccessStatus(outcome.statusCode);
        const result: CallResult = {
          outcome: succeeded ? 'Succeeded' : 'Failed',
          statusCode: outcome.statusCode,
          latencyMs: outcome.latencyMs,
          responseSnippet: outcome.responseSnippet,
          truncated: outcome.truncated,
          error: outcome.error ?? (succeeded ? null : `HTTP ${outcome.statusCode ?? '?'} is not a 2xx answer`),
        };
        const event: NewEvent = {
          ...nextEventEnvelope(state, history, messageId, now()),
          type: succeeded ? 'ServiceCallSucceeded' : 'ServiceCallFailed',
          data: {
            attempt: {
              attempt: ref.attempt,
              startedAt: outcome.startedAt,
              finishedAt: outcome.finishedAt,
              statusCode: outcome.statusCode,
              latencyMs: outcome.latencyMs,
              error: result.error,
            },
            result,
          },
        };
        return { events: [event], result: result.outcome };
      });
    },

    /** A cancel that reached the workflow: recorded only while the call is still Scheduled. */
    async cancelFromWorkflow(ref: ServiceCallRef): Promise<Status> {
      return handleCommand(deps, ref.tenantId, ref.serviceCallId, (state, history) => {
        if (state === undefined) notFound(ref);
        if (state.status !== 'Scheduled') return { events: [], result: state.status };
        const event: NewEvent = {
          ...nextEventEnvelope(state, history, deterministicMessageId(ref.serviceCallId, 'cancel'), now()),
          type: 'ServiceCallCancelled',
          data: { source: 'workflow' },
        };
        return { events: [event], result: 'Cancelled' };
      });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
