import type {
  AttemptRecord,
  CallbackAttemptRecord,
  CallbackSpec,
  EventBody,
  RequestSummary,
  RetryPolicy,
  ScheduleRunRef,
  SealedValue,
} from './events';
import { ATTEMPT_FAILURE, isRetryable, isSuccessStatus, retryDelayMs, type AttemptFailureKind } from './http-policy';
import { callbackDue, TERMINAL_STATUSES, type ServiceCallState } from './service-call';

/**
 * The decider of a service call (ADR-0012): every command, from the API or from the worker, is
 * decided here and nowhere else, as a pure function of the command and the call's folded state.
 * Callers read the stream, call `decide`, append what it returns with the version they read, and
 * report; a lost race (another writer appended first) is decided again on the new state.
 */

/** The call does not exist (or belongs to another tenant, whose streams are never read). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The command is not allowed in the call's current status. */
export class StateConflictError extends Error {
  override name = 'StateConflictError';
  constructor(
    message: string,
    readonly state: ServiceCallState,
  ) {
    super(message);
  }
}

/** MarkDue before the call's dueAt (a timer that fired early, or a reschedule to later). */
export class NotDueError extends Error {
  override name = 'NotDueError';
  constructor(
    readonly dueAt: string,
    readonly earlyMs: number,
  ) {
    super(`not due until ${dueAt} (${earlyMs} ms from now)`);
  }
}

export interface SubmitCommand {
  type: 'Submit';
  now: Date;
  request: RequestSummary;
  secrets: SealedValue | null;
  /** As requested; absent or past means now. */
  dueAt: Date | undefined;
  tags: string[];
  idempotencyKey: string | null;
  retry: RetryPolicy;
  timeoutMs: number;
  callback: CallbackSpec | null;
  /** Set on a schedule's run (ADR-0017). */
  schedule?: ScheduleRunRef | null;
  /** Keys whose flow limits the call's attempts obey (ADR-0018); absent or empty: none. */
  flowKeys?: string[];
}

export interface MarkDueCommand {
  type: 'MarkDue';
  now: Date;
}

export interface RecordAttemptCommand {
  type: 'RecordAttempt';
  now: Date;
  attempt: AttemptRecord;
  /** The target's Retry-After, in ms, when it sent one. */
  retryAfterMs: number | null;
  /** Why no answer came, when none did. */
  failure: AttemptFailureKind | null;
}

export interface RecordLostAttemptCommand {
  type: 'RecordLostAttempt';
  now: Date;
  attempt: number;
  reason: string;
}

export interface CancelCommand {
  type: 'Cancel';
  /** The API refuses a cancel that came too late; a workflow's cancel then does nothing. */
  source: 'api' | 'workflow';
}

export interface RescheduleCommand {
  type: 'Reschedule';
  now: Date;
  /** Validated at the edge (≤ 366 days ahead); a past instant means now. */
  dueAt: Date;
}

/**
 * Replay of a finished call, decided on the original's state: the new call's submit. `submitted`
 * is the original's request as recorded, its secrets already sealed again for the new stream.
 */
export interface ReplayCommand {
  type: 'Replay';
  now: Date;
  dueAt: Date | undefined;
  secrets: SealedValue | null;
  idempotencyKey: string | null;
  /** The replay's own callback; undefined keeps the original's, null asks for none. */
  callback: CallbackSpec | null | undefined;
  /** The replay's own flow keys; undefined keeps the original's. */
  flowKeys?: string[] | undefined;
}

/** One delivery attempt of the call's callback, made; `maxAttempts` is the most there may be. */
export interface RecordCallbackAttemptCommand {
  type: 'RecordCallbackAttempt';
  attempt: CallbackAttemptRecord;
  maxAttempts: number;
}

export type Command =
  | SubmitCommand
  | MarkDueCommand
  | RecordAttemptCommand
  | RecordLostAttemptCommand
  | CancelCommand
  | RescheduleCommand
  | ReplayCommand
  | RecordCallbackAttemptCommand;

const atOrAfter = (requested: Date | undefined, now: Date): string =>
  (requested !== undefined && requested > now ? requested : now).toISOString();

function existing(state: ServiceCallState | undefined): ServiceCallState {
  if (state === undefined) throw new NotFoundError('service call not found');
  return state;
}

function lostAttemptRecord(cmd: RecordLostAttemptCommand): AttemptRecord {
  const at = cmd.now.toISOString();
  return {
    attempt: cmd.attempt,
    startedAt: at,
    finishedAt: at,
    statusCode: null,
    latencyMs: null,
    error: `attempt could not complete: ${cmd.reason}`,
    responseSnippet: null,
    snippetEncoding: 'utf8',
    truncated: false,
    responseHeaders: {},
  };
}

/** The retry decision: another attempt if the policy allows and the answer is worth one. */
function decideAttempt(
  state: ServiceCallState,
  record: AttemptRecord,
  failure: AttemptFailureKind | null,
  retryAfterMs: number | null,
  now: Date,
) {
  // Recorded already (a retried activity), or the call is no longer running: nothing to add.
  if (state.status !== 'Running' || state.attempts.length >= record.attempt) return [];
  const succeeded = isSuccessStatus(record.statusCode);
  if (!succeeded && record.attempt < state.retry.maxAttempts && isRetryable(record.statusCode, failure)) {
    const delay = retryDelayMs(state.retry, record.attempt, record.statusCode, retryAfterMs);
    const retryAt = new Date(now.getTime() + delay).toISOString();
    return [{ type: 'AttemptFailed', data: { attempt: record, retryAt } }] satisfies EventBody[];
  }
  const result = {
    outcome: succeeded ? ('Succeeded' as const) : ('Failed' as const),
    statusCode: record.statusCode,
    latencyMs: record.latencyMs,
    responseSnippet: record.responseSnippet,
    snippetEncoding: record.snippetEncoding,
    truncated: record.truncated,
    responseHeaders: record.responseHeaders,
    error: record.error,
  };
  return [
    { type: succeeded ? 'ServiceCallSucceeded' : 'ServiceCallFailed', data: { attempt: record, result } },
  ] satisfies EventBody[];
}

/** Pure: the events `command` adds to a call in `state`, or a typed error saying why none may. */
export function decide(command: Command, state: ServiceCallState | undefined): EventBody[] {
  switch (command.type) {
    case 'Submit':
      if (state !== undefined) throw new StateConflictError('service call exists already', state);
      return [
        {
          type: 'ServiceCallSubmitted',
          data: {
            request: command.request,
            secrets: command.secrets,
            dueAt: atOrAfter(command.dueAt, command.now),
            tags: command.tags,
            idempotencyKey: command.idempotencyKey,
            retry: command.retry,
            timeoutMs: command.timeoutMs,
            ...(command.callback === null ? {} : { callback: command.callback }),
            ...(command.schedule == null ? {} : { schedule: command.schedule }),
            ...(command.flowKeys === undefined || command.flowKeys.length === 0 ? {} : { flowKeys: command.flowKeys }),
          },
        },
      ];
    case 'MarkDue': {
      const call = existing(state);
      // Cancelled, or already due: the workflow follows the status.
      if (call.status !== 'Scheduled') return [];
      const earlyMs = new Date(call.dueAt).getTime() - command.now.getTime();
      if (earlyMs > 0) throw new NotDueError(call.dueAt, earlyMs);
      return [{ type: 'DueTimeReached', data: { reachedAt: command.now.toISOString() } }];
    }
    case 'RecordAttempt':
      return decideAttempt(existing(state), command.attempt, command.failure, command.retryAfterMs, command.now);
    case 'RecordLostAttempt':
      return decideAttempt(existing(state), lostAttemptRecord(command), ATTEMPT_FAILURE.Lost, null, command.now);
    case 'Cancel': {
      const call = existing(state);
      if (call.status === 'Scheduled') return [{ type: 'ServiceCallCancelled', data: { source: command.source } }];
      // A repeated cancel, or one from the workflow after the call became due: nothing to do.
      if (command.source === 'workflow' || call.status === 'Cancelled') return [];
      throw new StateConflictError(`service call is ${call.status}; only a Scheduled call can be cancelled`, call);
    }
    case 'Reschedule': {
      const call = existing(state);
      if (call.status !== 'Scheduled') {
        throw new StateConflictError(`service call is ${call.status}; only a Scheduled call can be rescheduled`, call);
      }
      return [
        {
          type: 'ServiceCallRescheduled',
          data: { previousDueAt: call.dueAt, dueAt: atOrAfter(command.dueAt, command.now) },
        },
      ];
    }
    case 'Replay': {
      const call = existing(state);
      if (!TERMINAL_STATUSES.has(call.status)) {
        throw new StateConflictError(`service call is ${call.status}; only a finished call can be replayed`, call);
      }
      const callback =
        command.callback === undefined
          ? call.callback === null
            ? null
            : { url: call.callback.url, on: call.callback.on }
          : command.callback;
      const flowKeys = command.flowKeys ?? call.flowKeys;
      return [
        {
          type: 'ServiceCallSubmitted',
          data: {
            request: call.request,
            secrets: command.secrets,
            dueAt: atOrAfter(command.dueAt, command.now),
            tags: call.tags,
            idempotencyKey: command.idempotencyKey,
            retry: call.retry,
            timeoutMs: call.timeoutMs,
            replayOf: call.id,
            ...(callback === null ? {} : { callback }),
            ...(flowKeys.length === 0 ? {} : { flowKeys }),
          },
        },
      ];
    }
    case 'RecordCallbackAttempt': {
      const call = existing(state);
      const callback = call.callback;
      // Recorded already (a retried activity), not the next one, settled, or not due (yet): nothing.
      if (!callbackDue(call) || callback === null || command.attempt.attempt !== callback.attempts.length + 1)
        return [];
      const data = { attempt: command.attempt };
      if (isSuccessStatus(command.attempt.statusCode)) return [{ type: 'CallbackDelivered', data }];
      if (command.attempt.attempt >= command.maxAttempts) return [{ type: 'CallbackFailed', data }];
      return [{ type: 'CallbackAttemptFailed', data }];
    }
    default: {
      const unhandled: never = command;
      throw new Error(`unknown command ${JSON.stringify(unhandled)}`);
    }
  }
}
