import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import { handleCommand, nextEventEnvelope, requestFromSubmitted, type Decision, type Deps } from '../core/commands';
import type { AttemptRecord, NewEvent, ServiceCallSubmitted } from '../core/events';
import { ConcurrencyError, readStream } from '../core/event-store';
import { isRetryable, isSuccessStatus, retryDelayMs } from '../core/http-policy';
import { deterministicMessageId, streamIdFor } from '../core/ids';
import type { Logger } from '../core/logger';
import { fold, type Status } from '../core/service-call';
import { callsFinished, httpAttemptDuration, timerLateness } from '../core/metrics';
import { activeSigningSecrets, signatureHeaders } from '../core/signing';
import { encodeBody, hasHeader, performHttpRequest, type HttpAttemptOutcome } from './http';

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
} as const;
export const NON_RETRYABLE_FAILURE_TYPES: string[] = [FailureType.NotFound];

/** Longest the due check waits in-process for a timer that fired a little early. */
const MAX_EARLY_WAIT_MS = 20_000;

/** What an attempt leaves for the workflow: no response data, which stays in Postgres. */
export interface AttemptReport {
  status: Status;
  /** Set when another attempt is due: how long to wait for it. */
  retryInMs: number | null;
}

const messageIdForAttempt = (serviceCallId: string, attempt: number) =>
  deterministicMessageId(serviceCallId, `attempt:${attempt}`);

function attemptRecord(attempt: number, outcome: HttpAttemptOutcome): AttemptRecord {
  return {
    attempt,
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
    statusCode: outcome.statusCode,
    latencyMs: outcome.latencyMs,
    error:
      outcome.error ??
      (isSuccessStatus(outcome.statusCode) ? null : `HTTP ${outcome.statusCode ?? '?'} is not a 2xx answer`),
    responseSnippet: outcome.responseSnippet,
    snippetEncoding: outcome.snippetEncoding,
    truncated: outcome.truncated,
    responseHeaders: outcome.responseHeaders,
  };
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

  /**
   * Records DueTimeReached unless a cancel got there first. A timer can fire a hair early, and
   * the server's clock is not ours: a short wait is done here, a long one is handed back to the
   * workflow as a durable sleep (status Scheduled with retryInMs).
   */
  async function markDue(ref: ServiceCallRef, submitted: ServiceCallSubmitted): Promise<AttemptReport> {
    const early = new Date(submitted.data.dueAt).getTime() - now().getTime();
    if (early > MAX_EARLY_WAIT_MS) {
      deps.log.warn({ ...ref, earlyMs: early }, "timer fired long before dueAt by this worker's clock; sleeping again");
      return { status: 'Scheduled', retryInMs: early };
    }
    if (early > 0) await sleep(early);
    const status = await handleCommand(deps, ref.tenantId, ref.serviceCallId, (state, history) => {
      if (state === undefined) notFound(ref);
      if (state.status !== 'Scheduled') return { events: [], result: state.status };
      const at = now();
      const event: NewEvent = {
        ...nextEventEnvelope(state, history, deterministicMessageId(ref.serviceCallId, 'due'), at),
        type: 'DueTimeReached',
        data: { reachedAt: at.toISOString() },
      };
      deps.log.info(
        { tenantId: ref.tenantId, serviceCallId: ref.serviceCallId, correlationId: event.correlationId },
        'due time reached',
      );
      return { events: [event], result: 'Running' as const };
    });
    return { status, retryInMs: null };
  }

  /**
   * Appends the attempt's event. Postgres may blink right after a target answered: retrying here
   * (heartbeating) avoids repeating the HTTP call for what is only a recording problem.
   */
  async function recordAttempt(
    ref: ServiceCallRef,
    attempt: number,
    outcome: HttpAttemptOutcome,
  ): Promise<AttemptReport> {
    const record = attemptRecord(attempt, outcome);
    for (let round = 1; ; round++) {
      // Set by the decision that appends a terminal event, so a replay does not count twice.
      let finished: 'Succeeded' | 'Failed' | undefined;
      try {
        const report = await handleCommand(
          deps,
          ref.tenantId,
          ref.serviceCallId,
          (state, history): Decision<AttemptReport> => {
            finished = undefined;
            if (state === undefined) notFound(ref);
            const messageId = messageIdForAttempt(ref.serviceCallId, attempt);
            if (history.some((e) => e.messageId === messageId) || state.status !== 'Running') {
              return { events: [], result: reportOf(state) };
            }
            const envelope = nextEventEnvelope(state, history, messageId, now());
            const succeeded = isSuccessStatus(outcome.statusCode);
            if (!succeeded && attempt < state.retry.maxAttempts && isRetryable(outcome.statusCode, outcome.error)) {
              const delay = retryDelayMs(state.retry, attempt, outcome.statusCode, outcome.retryAfterMs);
              const retryAt = new Date(new Date(envelope.timestamp).getTime() + delay).toISOString();
              const event: NewEvent = { ...envelope, type: 'AttemptFailed', data: { attempt: record, retryAt } };
              return { events: [event], result: { status: 'Running', retryInMs: delay } };
            }
            const event: NewEvent = {
              ...envelope,
              type: succeeded ? 'ServiceCallSucceeded' : 'ServiceCallFailed',
              data: {
                attempt: record,
                result: {
                  outcome: succeeded ? 'Succeeded' : 'Failed',
                  statusCode: record.statusCode,
                  latencyMs: record.latencyMs,
                  responseSnippet: record.responseSnippet,
                  snippetEncoding: record.snippetEncoding,
                  truncated: record.truncated,
                  responseHeaders: record.responseHeaders,
                  error: record.error,
                },
              },
            };
            finished = succeeded ? 'Succeeded' : 'Failed';
            return { events: [event], result: { status: finished, retryInMs: null } };
          },
        );
        if (finished !== undefined) callsFinished.inc({ outcome: finished });
        return report;
      } catch (err) {
        if (err instanceof ApplicationFailure || err instanceof ConcurrencyError || round >= 8) throw err;
        deps.log.warn({ err, ...ref, attempt }, 'recording the attempt failed; retrying');
        Context.current().heartbeat();
        await sleep(Math.min(10_000, 250 * 2 ** round));
      }
    }
  }

  function reportOf(state: { status: Status; nextAttemptAt: string | null }): AttemptReport {
    const retryInMs =
      state.status === 'Running' && state.nextAttemptAt !== null
        ? Math.max(0, new Date(state.nextAttemptAt).getTime() - now().getTime())
        : null;
    return { status: state.status, retryInMs };
  }

  return {
    /**
     * One attempt of a call: the first one records DueTimeReached, then the request is sent
     * exactly as submitted (secrets unsealed here, in memory only), signed, and its outcome
     * appended. Repeated after a worker crash, it finds a recorded outcome and does not call
     * again; a crash between the call and the record repeats the call (at-least-once).
     */
    async runAttempt(ref: ServiceCallRef & { attempt: number }): Promise<AttemptReport> {
      const streamId = streamIdFor(ref.tenantId, ref.serviceCallId);
      const history = await readStream(deps.db, streamId);
      const submitted = history[0];
      if (submitted === undefined || submitted.type !== 'ServiceCallSubmitted') notFound(ref);
      if (history.some((e) => e.messageId === messageIdForAttempt(ref.serviceCallId, ref.attempt))) {
        const state = fold(history);
        if (state === undefined) notFound(ref);
        return reportOf(state);
      }
      if (ref.attempt === 1) {
        const due = await markDue(ref, submitted);
        if (due.status !== 'Running') return due;
      }
      const request = requestFromSubmitted(submitted.data, streamId, deps.keyring);
      const { headers, body } = encodeBody(request.headers, request.body);
      const secrets = await activeSigningSecrets(deps.db, deps.keyring, ref.tenantId);
      const ours: Record<string, string> = {
        // The same on every attempt, so a target can deduplicate.
        'idempotency-key': ref.serviceCallId,
        ...signatureHeaders(
          secrets.map((s) => s.secret),
          ref.serviceCallId,
          Math.floor(now().getTime() / 1000),
          body ?? '',
        ),
      };
      // Our headers never replace one the tenant set.
      for (const [name, value] of Object.entries(ours)) if (!hasHeader(headers, name)) headers[name] = value;

      const ctx = Context.current();
      const log = {
        tenantId: ref.tenantId,
        serviceCallId: ref.serviceCallId,
        attempt: ref.attempt,
        correlationId: submitted.correlationId,
      };
      deps.log.info({ ...log, method: request.method }, 'http attempt started');
      // Heartbeats let Temporal notice a dead worker long before the start-to-close timeout.
      const beat = setInterval(() => ctx.heartbeat(), 1_000);
      let outcome: HttpAttemptOutcome;
      try {
        outcome = await performHttpRequest(
          { method: request.method, url: request.url, headers, body },
          { timeoutMs: submitted.data.timeoutMs, dispatcher: deps.http, signal: ctx.cancellationSignal },
        );
      } finally {
        clearInterval(beat);
      }
      deps.log.info(
        { ...log, statusCode: outcome.statusCode, latencyMs: outcome.latencyMs, error: outcome.error },
        'http attempt finished',
      );
      const elapsedMs = new Date(outcome.finishedAt).getTime() - new Date(outcome.startedAt).getTime();
      httpAttemptDuration.observe(
        { result: isSuccessStatus(outcome.statusCode) ? 'success' : outcome.statusCode === null ? 'error' : 'failure' },
        (outcome.latencyMs ?? elapsedMs) / 1000,
      );
      if (ref.attempt === 1) {
        timerLateness.observe(
          Math.max(0, new Date(outcome.startedAt).getTime() - new Date(submitted.data.dueAt).getTime()) / 1000,
        );
      }
      return recordAttempt(ref, ref.attempt, outcome);
    },

    /** The attempt could not complete at all (workers kept dying): record it as a failed attempt. */
    async recordLostAttempt(ref: ServiceCallRef & { attempt: number; reason: string }): Promise<AttemptReport> {
      const at = now().toISOString();
      return recordAttempt(ref, ref.attempt, {
        startedAt: at,
        finishedAt: at,
        statusCode: null,
        latencyMs: null,
        responseSnippet: null,
        snippetEncoding: 'utf8',
        truncated: false,
        responseHeaders: {},
        retryAfterMs: null,
        error: `attempt could not complete: ${ref.reason}`,
      });
    },

    /** A cancel that reached the workflow: recorded only while the call is still Scheduled. */
    async cancelFromWorkflow(ref: ServiceCallRef): Promise<Status> {
      let appended = false;
      const status = await handleCommand(deps, ref.tenantId, ref.serviceCallId, (state, history): Decision<Status> => {
        appended = false;
        if (state === undefined) notFound(ref);
        if (state.status !== 'Scheduled') return { events: [], result: state.status };
        const event: NewEvent = {
          ...nextEventEnvelope(state, history, deterministicMessageId(ref.serviceCallId, 'cancel'), now()),
          type: 'ServiceCallCancelled',
          data: { source: 'workflow' },
        };
        appended = true;
        return { events: [event], result: 'Cancelled' };
      });
      if (appended) callsFinished.inc({ outcome: 'Cancelled' });
      return status;
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
