import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure, TemporalFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import { submitScheduleRun, type RunOutcome } from '../core/schedule-commands';
import { handleCommand, requestFromSubmitted, type CommandOptions, type Deps } from '../core/commands';
import { NotDueError, NotFoundError, type Command } from '../core/decider';
import type { AttemptRecord, ServiceCallSubmitted, StoredEvent } from '../core/events';
import { isConnectionError, pgErrorOf } from '../core/db';
import { ConcurrencyError, readStream } from '../core/event-store';
import { ATTEMPT_FAILURE, isSuccessStatus } from '../core/http-policy';
import { deterministicMessageId, streamIdFor } from '../core/ids';
import type { Logger } from '../core/logger';
import {
  callbackDue,
  fold,
  TERMINAL_STATUSES,
  type CallbackStatus,
  type ServiceCallState,
  type Status,
} from '../core/service-call';
import {
  callbackDeliveryDuration,
  flowAdmitted,
  flowWaitDuration,
  httpAttemptDuration,
  timerLateness,
} from '../core/metrics';
import {
  acquire,
  effectiveKeys,
  giveUpWaits,
  releaseLeases,
  renewLeases,
  reserveAhead,
  type Admission,
} from '../core/flow-limits';
import { toView } from '../core/view';
import { activeSigningSecrets, signatureHeaders, type SigningSecretView } from '../core/signing';
import { FailureType } from '../workflows/failure-types';
import { encodeBody, hasHeader, performHttpRequest, type HttpAttemptOutcome, type OutgoingRequest } from './http';

export interface ServiceCallRef {
  tenantId: string;
  serviceCallId: string;
}

export interface ActivityDeps extends Deps {
  http: Dispatcher;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
  /** Flow limits (ADR-0018); absent: attempts are never held back. */
  flow?: {
    leaseTtlMs: number;
    maxWaitMs: number;
    /** A wakeable workflow (revision 5) may wait this long for a rate key's send slot; absent: maxWaitMs. */
    maxSlotWaitMs?: number;
    /** Waits up to this long are slept in the attempt rather than on a workflow timer. */
    inProcessWaitMs: number;
    /** Whether a tenant has any `host:` limit, from a short-lived cache: no query per call. */
    hostLimits: { has(tenantId: string): Promise<boolean> };
  };
}

/**
 * What a workflow that obeys flow limits (revision 4) tells an attempt: when the limits first
 * held this attempt back, if they did.
 */
export interface FlowContext {
  since?: string;
  /** Revision 5: the workflow wakes on `flowLimitChanged`, so a wait for a send slot may be long. */
  wakeable?: boolean;
}

/** Longest the due check waits in-process for a timer that fired a little early. */
const MAX_EARLY_WAIT_MS = 20_000;

/** What a callback delivery attempt leaves for the workflow. */
export interface CallbackReport {
  /** The callback's status after it: Pending means not settled, and the activity failed instead. */
  status: CallbackStatus;
}

/** The callback's body: the call at its end, as GET /v1/service-calls/{id} shows it. */
const CALLBACK_TYPES = {
  ServiceCallSucceeded: 'service-call.succeeded',
  ServiceCallFailed: 'service-call.failed',
  ServiceCallCancelled: 'service-call.cancelled',
} as const;

/** Where a call's schedule stands, for a workflow told that its dueAt changed. */
export interface ScheduleReport {
  status: Status;
  dueAt: string;
}

/** What an attempt leaves for the workflow: no response data, which stays in Postgres. */
export interface AttemptReport {
  status: Status;
  /** Set when another attempt is due: how long to wait for it. */
  retryInMs: number | null;
  /**
   * Set when flow limits did not admit the attempt (nothing was sent): the workflow waits this
   * long on a durable timer and runs the same attempt again.
   */
  throttle?: { waitMs: number; waitingFor: string[]; since: string };
}

/**
 * Tells Temporal this activity is alive. A local activity (how attempts run) has no heartbeat of
 * its own: the worker keeps its workflow task alive instead.
 */
function heartbeat(ctx: Context): void {
  if (!ctx.info.isLocal) ctx.heartbeat();
}

const messageIdForAttempt = (serviceCallId: string, attempt: number) =>
  deterministicMessageId(serviceCallId, `attempt:${attempt}`);

function attemptRecord(attempt: number, outcome: HttpAttemptOutcome, throttledMs?: number): AttemptRecord {
  return {
    ...(throttledMs === undefined ? {} : { throttledMs }),
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

  /** Decides and appends a command of this call; an unknown call is final for the workflow. */
  async function run(ref: ServiceCallRef, command: Command, messageId: string, stream: CommandOptions = {}) {
    try {
      return await handleCommand(
        deps,
        ref.tenantId,
        ref.serviceCallId,
        command,
        { messageIdFor: () => messageId },
        stream,
      );
    } catch (err) {
      if (err instanceof NotFoundError) notFound(ref);
      throw err;
    }
  }

  /**
   * Records DueTimeReached unless a cancel or a reschedule got there first. The dueAt is the
   * call's, read from the stream (a reschedule moves it; the workflow's input is only a hint). A
   * timer can fire a hair early, and the server's clock is not ours: a short wait is done here, a
   * long one is handed back to the workflow as a durable sleep (status Scheduled with retryInMs).
   */
  async function markDue(
    ref: ServiceCallRef,
    state: ServiceCallState,
    stream: CommandOptions,
    onDue: () => void,
  ): Promise<{ report: AttemptReport; history?: StoredEvent[] }> {
    // Already due with no attempt recorded (a crash, or Temporal's data lost and the workflow
    // started again by the reconciler): the attempt goes ahead on the stream as read.
    if (state.status === 'Running' && stream.known !== undefined)
      return { report: reportOf(state), history: [...stream.known] };
    if (state.status !== 'Scheduled') return { report: reportOf(state) };
    const dueMs = new Date(state.dueAt).getTime();
    const early = dueMs - now().getTime();
    if (early > MAX_EARLY_WAIT_MS) {
      deps.log.warn({ ...ref, earlyMs: early }, "timer fired long before dueAt by this worker's clock; sleeping again");
      return { report: { status: 'Scheduled', retryInMs: early } };
    }
    // Every timer with a lead (TIMER_LEAD_MS) waits here; setTimeout can fire a millisecond before
    // the clock reaches dueAt, so the clock decides when the wait is over.
    for (let left = early; left > 0; left = dueMs - now().getTime()) await sleep(left);
    onDue();
    try {
      const done = await run(
        ref,
        { type: 'MarkDue', now: now() },
        deterministicMessageId(ref.serviceCallId, 'due'),
        stream,
      );
      if (done.appended.length > 0) {
        deps.log.info({ ...ref, correlationId: done.appended[0]?.correlationId }, 'due time reached');
      }
      return { report: { status: done.state.status, retryInMs: null }, history: done.history };
    } catch (err) {
      // Rescheduled to later while this attempt waited: sleep again, in the workflow.
      if (!(err instanceof NotDueError)) throw err;
      deps.log.info({ ...ref, dueAt: err.dueAt }, 'due time moved; sleeping again');
      return { report: { status: 'Scheduled', retryInMs: err.earlyMs } };
    }
  }

  /**
   * Appends the attempt's event. Postgres may be away right after a target answered: retrying here
   * until it is back avoids repeating the HTTP call for what is only a recording problem.
   */
  async function recordAttempt(
    ref: ServiceCallRef,
    command: Extract<Command, { type: 'RecordAttempt' | 'RecordLostAttempt' }>,
    known?: readonly StoredEvent[],
  ): Promise<AttemptReport> {
    const attempt = command.type === 'RecordAttempt' ? command.attempt.attempt : command.attempt;
    const messageId = messageIdForAttempt(ref.serviceCallId, attempt);
    for (let round = 1; ; round++) {
      try {
        // After a failed round the stream is read afresh.
        const done = await run(ref, command, messageId, round === 1 ? { known } : {});
        // Freshly decided: the wait is the one decided, from the instant it was decided at.
        return reportOf(done.state, done.appended.length > 0 ? command.now : now());
      } catch (err) {
        if (err instanceof ApplicationFailure || err instanceof ConcurrencyError) throw err;
        // The request has been sent: failing here would make Temporal send it again. Wait for the
        // database instead, as long as the activity's timeout allows, heartbeating (every 2 s at
        // most, well inside the 5 s heartbeat timeout) so that Temporal knows this worker lives.
        const ctx = Context.current();
        if (ctx.cancellationSignal.aborted) throw err;
        if (round === 1 || round % 10 === 0) {
          deps.log.warn({ err, ...ref, attempt, round }, 'recording the attempt failed; retrying');
        }
        heartbeat(ctx);
        await sleep(Math.min(2_000, 100 * 2 ** round));
      }
    }
  }

  /**
   * Everything before the request leaves: the stream, the due mark (first attempt), the request
   * as submitted (secrets unsealed in memory only), its signature. Either the call needs no
   * sending (a report) or here is what to send.
   */
  async function prepareAttempt(ref: ServiceCallRef & { attempt: number }): Promise<
    | { report: AttemptReport }
    | {
        submitted: ServiceCallSubmitted;
        dueAt: string;
        request: OutgoingRequest;
        history: readonly StoredEvent[];
      }
  > {
    const streamId = streamIdFor(ref.tenantId, ref.serviceCallId);
    const read = await readCall(ref);
    const { submitted, state } = read;
    let history: readonly StoredEvent[] = read.history;
    if (state.attempts.length >= ref.attempt) return { report: reportOf(state) };
    // Read while DueTimeReached is being appended (after the wait for dueAt, so that a secret
    // revoked meanwhile does not sign).
    let signing: Promise<SigningSecretView[]> | undefined;
    const readSigning = () => {
      if (signing === undefined) {
        signing = activeSigningSecrets(deps.db, deps.keyring, ref.tenantId);
        signing.catch(() => undefined);
      }
      return signing;
    };
    if (ref.attempt === 1) {
      // Decided on the stream just read; the append's version check catches a cancel since.
      const due = await markDue(ref, state, { known: history }, readSigning);
      if (due.report.status !== 'Running' || due.history === undefined) return { report: due.report };
      history = due.history;
    }
    const request = requestFromSubmitted(submitted.data, streamId, deps.keyring);
    const { headers, body } = encodeBody(request.headers, request.body);
    const secrets = await readSigning();
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
    return {
      submitted,
      dueAt: state.dueAt,
      request: { method: request.method, url: request.url, headers, body },
      history,
    };
  }

  /** The call's stream, its submission and its state; an unknown call is final for the workflow. */
  async function readCall(
    ref: ServiceCallRef,
  ): Promise<{ history: readonly StoredEvent[]; submitted: ServiceCallSubmitted; state: ServiceCallState }> {
    const history = await readStream(deps.db, streamIdFor(ref.tenantId, ref.serviceCallId));
    const submitted = history[0];
    if (submitted === undefined || submitted.type !== 'ServiceCallSubmitted') notFound(ref);
    const state = fold(history);
    if (state === undefined) notFound(ref);
    return { history, submitted, state };
  }

  /**
   * Runs work that comes before the request is sent. A database failure in it becomes
   * AttemptNotSent: the workflow waits and tries the same attempt again without counting it, so
   * a database outage delays a due call, however long, and never fails it unsent. Anything else
   * (a sealed value the running ENCRYPTION_KEY cannot open) fails the attempt as before.
   */
  async function notSentOnFailure<T>(ref: ServiceCallRef & { attempt: number }, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof TemporalFailure || (!isConnectionError(err) && pgErrorOf(err) === undefined)) throw err;
      deps.log.warn({ err, ...ref }, 'attempt could not be prepared; not sent, will run again');
      throw ApplicationFailure.create({
        type: FailureType.NotSent,
        message: `attempt ${ref.attempt} not sent: ${err instanceof Error ? err.message : String(err)}`,
        nonRetryable: true,
      });
    }
  }

  /**
   * Asks the flow limits of the call's keys (ADR-0018), only for a workflow that can wait for them
   * (`flow` given) and only when the call has keys: its own, or its host's when the tenant has
   * host limits (a cached answer). A call without keys costs no query here.
   */
  async function admit(
    ref: ServiceCallRef & { flow?: FlowContext },
    submitted: ServiceCallSubmitted,
    dueAt: string,
  ): Promise<Admission | undefined> {
    const flow = deps.flow;
    if (ref.flow === undefined || flow === undefined) return undefined;
    const own = submitted.data.flowKeys ?? [];
    const hostLimits = await flow.hostLimits.has(ref.tenantId);
    if (own.length === 0 && !hostLimits && ref.flow.since === undefined) return undefined;
    const keys = effectiveKeys(own, submitted.data.request.url, hostLimits);
    const ask = () =>
      acquire(
        deps.db,
        { tenantId: ref.tenantId, serviceCallId: ref.serviceCallId, dueAt, keys },
        {
          leaseTtlMs: flow.leaseTtlMs,
          maxWaitMs: flow.maxWaitMs,
          ...(ref.flow?.wakeable === true && flow.maxSlotWaitMs !== undefined
            ? { maxSlotWaitMs: flow.maxSlotWaitMs }
            : {}),
        },
      );
    let admission = await ask();
    // A short wait is slept here, in the attempt, and asked again: a durable timer and a workflow
    // task would cost more than the wait and come back late for a reserved slot (ADR-0018). A
    // longer one, or one past five short ones' worth, goes back to the workflow: one timer.
    const budget = 5 * flow.inProcessWaitMs;
    const short = (a: Admission) => !a.admitted && a.waitMs <= flow.inProcessWaitMs;
    for (let spent = 0; short(admission) && !admission.admitted && spent + admission.waitMs <= budget;) {
      spent += admission.waitMs;
      await sleep(admission.waitMs);
      admission = await ask();
    }
    if (admission.admitted) {
      const waitedS = throttledMsOf(ref.flow, admission) / 1000;
      for (const key of admission.limited) {
        flowAdmitted.inc({ tenant: ref.tenantId, key });
        flowWaitDuration.observe({ tenant: ref.tenantId, key }, waitedS);
      }
    }
    return admission;
  }

  function reportOf(state: { status: Status; nextAttemptAt: string | null }, at = now()): AttemptReport {
    const retryInMs =
      state.status === 'Running' && state.nextAttemptAt !== null
        ? Math.max(0, new Date(state.nextAttemptAt).getTime() - at.getTime())
        : null;
    return { status: state.status, retryInMs };
  }

  return {
    /**
     * Submits one run of a schedule (workflows/scheduled-run.ts) for the instant its action was
     * scheduled for; a retry answers the call the first try made (ADR-0017).
     */
    async submitScheduledRun(ref: { tenantId: string; scheduleId: string; scheduledAt: string }): Promise<RunOutcome> {
      const outcome = await submitScheduleRun(deps, {
        tenantId: ref.tenantId,
        scheduleId: ref.scheduleId,
        scheduledAt: new Date(ref.scheduledAt),
        manual: false,
      });
      deps.log.info(
        { tenantId: ref.tenantId, scheduleId: ref.scheduleId, scheduledAt: ref.scheduledAt, ...outcome },
        'schedule run submitted',
      );
      return outcome;
    },
    /**
     * One attempt of a call: the first one records DueTimeReached, then the request is sent
     * exactly as submitted (secrets unsealed here, in memory only), signed, and its outcome
     * appended. Repeated after a worker crash, it finds a recorded outcome and does not call
     * again; a crash between the call and the record repeats the call (at-least-once).
     */
    async runAttempt(ref: ServiceCallRef & { attempt: number; flow?: FlowContext }): Promise<AttemptReport> {
      const ctx = Context.current();
      let leased: string[] = [];
      let beats = 0;
      // Heartbeats let Temporal notice a dead worker long before the start-to-close timeout; they
      // also keep this attempt's flow leases alive (renewed three times per lease TTL).
      const beat = setInterval(() => {
        heartbeat(ctx);
        beats++;
        if (
          leased.length > 0 &&
          deps.flow !== undefined &&
          beats % Math.max(1, Math.floor(deps.flow.leaseTtlMs / 3000)) === 0
        ) {
          renewLeases(deps.db, ref.tenantId, ref.serviceCallId, deps.flow.leaseTtlMs).catch((err: unknown) =>
            deps.log.warn({ err, ...ref }, 'renewing flow leases failed'),
          );
        }
      }, 1_000);
      try {
        const prepared = await notSentOnFailure(ref, () => prepareAttempt(ref));
        if ('report' in prepared) return prepared.report;
        const { submitted, dueAt, request, history } = prepared;
        const admission = await notSentOnFailure(ref, () => admit(ref, submitted, dueAt));
        if (admission !== undefined && !admission.admitted) {
          const throttle = { waitMs: admission.waitMs, waitingFor: admission.waitingFor, since: admission.since };
          deps.log.info({ ...ref, ...throttle }, 'attempt held back by flow limits');
          return { status: 'Running', retryInMs: null, throttle };
        }
        if (admission !== undefined) {
          leased = admission.leased;
          // Admitted ahead: its token is there at that instant, not before (ADMIT_AHEAD_MS).
          if (admission.sendInMs > 0) await sleep(admission.sendInMs);
        }
        // Recorded on calls a limit applied to (or held back before its limit was deleted) only.
        const throttledMs =
          admission === undefined || (admission.limited.length === 0 && throttledMsOf(ref.flow, admission) === 0)
            ? undefined
            : throttledMsOf(ref.flow, admission);
        const log = {
          tenantId: ref.tenantId,
          serviceCallId: ref.serviceCallId,
          attempt: ref.attempt,
          correlationId: submitted.correlationId,
        };
        deps.log.info({ ...log, method: request.method }, 'http attempt started');
        const outcome = await performHttpRequest(request, {
          timeoutMs: submitted.data.timeoutMs,
          dispatcher: deps.http,
          signal: ctx.cancellationSignal,
        });
        if (ctx.cancellationSignal.aborted) {
          // Cut short by the worker (shutting down, or the attempt timed out), not by the target:
          // nothing to record. The attempt runs again, and the target may see it twice.
          deps.log.warn({ ...log, error: outcome.error }, 'http attempt cancelled by the worker; not recorded');
          throw new CancelledFailure('the attempt was cancelled before its outcome could be recorded');
        }
        deps.log.info(
          { ...log, statusCode: outcome.statusCode, latencyMs: outcome.latencyMs, error: outcome.error },
          'http attempt finished',
        );
        const elapsedMs = new Date(outcome.finishedAt).getTime() - new Date(outcome.startedAt).getTime();
        httpAttemptDuration.observe(
          {
            result: isSuccessStatus(outcome.statusCode) ? 'success' : outcome.statusCode === null ? 'error' : 'failure',
          },
          (outcome.latencyMs ?? elapsedMs) / 1000,
        );
        if (ref.attempt === 1) {
          timerLateness.observe(Math.max(0, new Date(outcome.startedAt).getTime() - new Date(dueAt).getTime()) / 1000);
        }
        const command = {
          type: 'RecordAttempt',
          now: now(),
          attempt: attemptRecord(ref.attempt, outcome, throttledMs),
          retryAfterMs: outcome.retryAfterMs,
          failure: outcome.failure,
        } as const;
        return await recordAttempt(ref, command, history);
      } finally {
        clearInterval(beat);
        // After the outcome is recorded (or the attempt abandoned): the place goes to the next call.
        // If this fails, the lease still ends at its expiry.
        if (leased.length > 0) {
          await releaseLeases(deps.db, ref.tenantId, ref.serviceCallId).catch((err: unknown) =>
            deps.log.warn({ err, ...ref }, 'releasing flow leases failed; they expire on their own'),
          );
        }
      }
    },

    /**
     * One delivery attempt of the call's callback (ADR-0016): the call as it ended, POSTed to the
     * callback URL, signed with the tenant's current secrets under one `webhook-id` for every
     * attempt, and recorded. A 2xx, or the last allowed attempt, settles it; any other answer is
     * recorded and the activity fails, so that Temporal runs it again after its backoff. A worker
     * that dies mid-attempt is noticed by heartbeat and the attempt is made again (at least once).
     */
    async deliverCallback(ref: ServiceCallRef & { maxAttempts: number; timeoutMs: number }): Promise<CallbackReport> {
      const ctx = Context.current();
      const beat = setInterval(() => heartbeat(ctx), 1_000);
      try {
        const streamId = streamIdFor(ref.tenantId, ref.serviceCallId);
        const history = await readStream(deps.db, streamId);
        const state = fold(history);
        if (state === undefined) notFound(ref);
        if (!callbackDue(state) || state.callback === null) {
          return { status: state.callback?.status ?? 'NotRequired' };
        }
        const end = history.findIndex((e) => e.type in CALLBACK_TYPES);
        const ending = history[end];
        if (ending === undefined || !(ending.type in CALLBACK_TYPES)) throw new Error('a due callback has no outcome');
        const attempt = state.callback.attempts.length + 1;
        const body = JSON.stringify({
          type: CALLBACK_TYPES[ending.type as keyof typeof CALLBACK_TYPES],
          timestamp: ending.timestamp,
          data: toView(fold(history.slice(0, end + 1))!),
        });
        const webhookId = deterministicMessageId(ref.serviceCallId, 'callback');
        const secrets = await activeSigningSecrets(deps.db, deps.keyring, ref.tenantId);
        const headers = {
          'content-type': 'application/json',
          ...signatureHeaders(
            secrets.map((s) => s.secret),
            webhookId,
            Math.floor(now().getTime() / 1000),
            body,
          ),
        };
        const log = {
          tenantId: ref.tenantId,
          serviceCallId: ref.serviceCallId,
          callbackAttempt: attempt,
          webhookId,
          correlationId: history[0]?.correlationId,
        };
        deps.log.info(log, 'callback delivery started');
        const outcome = await performHttpRequest(
          { method: 'POST', url: state.callback.url, headers, body },
          { timeoutMs: ref.timeoutMs, dispatcher: deps.http, signal: ctx.cancellationSignal },
        );
        if (ctx.cancellationSignal.aborted) {
          throw new CancelledFailure('the callback delivery was cancelled before its outcome could be recorded');
        }
        const delivered = isSuccessStatus(outcome.statusCode);
        callbackDeliveryDuration.observe(
          { result: delivered ? 'success' : outcome.statusCode === null ? 'error' : 'failure' },
          (outcome.latencyMs ?? new Date(outcome.finishedAt).getTime() - new Date(outcome.startedAt).getTime()) / 1000,
        );
        const record = {
          attempt,
          at: outcome.startedAt,
          statusCode: outcome.statusCode,
          latencyMs: outcome.latencyMs,
          error: outcome.error ?? (delivered ? null : `HTTP ${outcome.statusCode ?? '?'} is not a 2xx answer`),
        };
        deps.log.info({ ...log, statusCode: record.statusCode, error: record.error }, 'callback delivery finished');
        const done = await run(
          ref,
          {
            type: 'RecordCallbackAttempt',
            attempt: record,
            // A receiver the egress guard refuses stays refused: no point in trying again.
            maxAttempts: outcome.failure === ATTEMPT_FAILURE.EgressRefused ? attempt : ref.maxAttempts,
          },
          deterministicMessageId(ref.serviceCallId, `callback:${attempt}`),
          { known: history },
        );
        const status = done.state.callback?.status ?? 'NotRequired';
        if (status === 'Pending') {
          // Temporal waits out the backoff and runs the next attempt.
          throw ApplicationFailure.create({
            type: FailureType.CallbackNotDelivered,
            message: `callback attempt ${attempt} not delivered: ${record.error ?? 'no 2xx'}`,
          });
        }
        return { status };
      } finally {
        clearInterval(beat);
      }
    },

    /** Whether a schedule's run has ended (terminal status): what a Skip or BufferOne action waits for. */
    async callEnded(ref: ServiceCallRef): Promise<boolean> {
      const state = fold(await readStream(deps.db, streamIdFor(ref.tenantId, ref.serviceCallId)));
      return state === undefined || TERMINAL_STATUSES.has(state.status);
    },

    /** The attempt could not complete at all (workers kept dying): record it as a failed attempt. */
    async recordLostAttempt(ref: ServiceCallRef & { attempt: number; reason: string }): Promise<AttemptReport> {
      return recordAttempt(ref, { type: 'RecordLostAttempt', now: now(), attempt: ref.attempt, reason: ref.reason });
    },

    /** A cancel that reached the workflow: recorded only while the call is still Scheduled. */
    async cancelFromWorkflow(ref: ServiceCallRef): Promise<Status> {
      const messageId = deterministicMessageId(ref.serviceCallId, 'cancel');
      const status = (await run(ref, { type: 'Cancel', source: 'workflow' }, messageId)).state.status;
      // A slot it reserved ahead (revision 6) goes back to the key rather than sit unused.
      if (status === 'Cancelled') await giveUpWaits(deps.db, ref.tenantId, ref.serviceCallId);
      return status;
    },

    /**
     * Reserves the call's send slots on its rate keys ahead of its dueAt (revision 6, ADR-0018),
     * so that its workflow sleeps until the slot rather than waking at dueAt to be held back.
     * Answers when to wake: the slot (never more than FLOW_MAX_SLOT_WAIT_MS past dueAt, so that a
     * lost `flowLimitChanged` cannot leave it asleep long), or null: no rate key, no limits on
     * this worker, or the call is no longer Scheduled. The attempt still asks for admission.
     */
    async reserveFlowSlots(ref: ServiceCallRef): Promise<{ wakeAt: string | null }> {
      const flow = deps.flow;
      if (flow === undefined) return { wakeAt: null };
      const { submitted, state } = await readCall(ref);
      if (state.status !== 'Scheduled') return { wakeAt: null };
      const keys = effectiveKeys(
        submitted.data.flowKeys,
        submitted.data.request.url,
        await flow.hostLimits.has(ref.tenantId),
      );
      const slot = await reserveAhead(deps.db, { ...ref, dueAt: state.dueAt, keys });
      if (slot === null) return { wakeAt: null };
      const latest =
        Math.max(new Date(state.dueAt).getTime(), now().getTime()) + (flow.maxSlotWaitMs ?? flow.maxWaitMs);
      const wakeAt = new Date(Math.min(new Date(slot).getTime(), latest)).toISOString();
      deps.log.debug({ ...ref, dueAt: state.dueAt, slotAt: slot, wakeAt }, 'flow slots reserved ahead');
      return { wakeAt };
    },
    /**
     * The call's status and dueAt as the stream holds them: what a workflow nudged by a
     * reschedule sleeps until (ADR-0012). The nudge carries nothing; this is the truth.
     */
    async readSchedule(ref: ServiceCallRef): Promise<ScheduleReport> {
      const state = fold(await readStream(deps.db, streamIdFor(ref.tenantId, ref.serviceCallId)));
      if (state === undefined) notFound(ref);
      return { status: state.status, dueAt: state.dueAt };
    },
  };
}

/** How long the limits held an admitted attempt back: from its first refusal to its admission. */
function throttledMsOf(flow: FlowContext | undefined, admission: Extract<Admission, { admitted: true }>): number {
  const since = flow?.since ?? admission.waitedSince;
  return since === undefined || since === null
    ? 0
    : Math.max(0, new Date(admission.at).getTime() - new Date(since).getTime());
}

export type Activities = ReturnType<typeof createActivities>;

/** What a schedule's action leaves in its workflow's result: the run's call, or why there is none. */
export type ScheduleRunReport = RunOutcome;
