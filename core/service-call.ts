import { AGGREGATE_TYPE } from './events';
import type {
  AttemptRecord,
  CallbackAttemptRecord,
  CallbackOutcome,
  CallResult,
  RequestSummary,
  RetryPolicy,
  ServiceCallEvent,
} from './events';

export const STATUSES = ['Scheduled', 'Running', 'Succeeded', 'Failed', 'Cancelled'] as const;
export type Status = (typeof STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<Status> = new Set(['Succeeded', 'Failed', 'Cancelled']);

/**
 * Where a call's callback stands: Pending until it is delivered or given up on, NotRequired when
 * the call ended with an outcome the callback was not asked for.
 */
export const CALLBACK_STATUSES = ['Pending', 'Delivered', 'Failed', 'NotRequired'] as const;
export type CallbackStatus = (typeof CALLBACK_STATUSES)[number];

export interface CallbackState {
  url: string;
  on: CallbackOutcome[];
  status: CallbackStatus;
  attempts: CallbackAttemptRecord[];
}

/** The state of one service call, folded from its events; the read model stores the same shape. */
export interface ServiceCallState {
  tenantId: string;
  id: string;
  status: Status;
  request: RequestSummary;
  dueAt: string;
  tags: string[];
  retry: RetryPolicy;
  timeoutMs: number;
  /** When the next attempt is due, while a retry is pending. */
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  attempts: AttemptRecord[];
  result: CallResult | null;
  /** The finished call this one replays; null for a call submitted directly. */
  replayOf: string | null;
  /** The callback asked for at submit, and its deliveries; null when none was. */
  callback: CallbackState | null;
  /** The schedule this call is a run of; null for a call submitted directly. */
  scheduleId: string | null;
  /** The instant the schedule fired this run for; null for a call submitted directly. */
  scheduledAt: string | null;
  /** Keys whose flow limits the call's attempts obey (ADR-0018); empty: none of its own. */
  flowKeys: string[];
  /** Version of the last event folded in. */
  version: number;
}

export class InvalidTransitionError extends Error {
  override name = 'InvalidTransitionError';
}

function requireStatus(state: ServiceCallState, event: ServiceCallEvent, allowed: Status[]): void {
  if (!allowed.includes(state.status)) {
    throw new InvalidTransitionError(
      `${event.type} (v${event.version}) cannot follow status ${state.status} of ${state.tenantId}/${state.id}`,
    );
  }
}

function requireNextAttempt(state: ServiceCallState, event: ServiceCallEvent, attempt: number): void {
  if (attempt !== state.attempts.length + 1) {
    throw new InvalidTransitionError(
      `${event.type} records attempt ${attempt}, expected ${state.attempts.length + 1} of ${state.tenantId}/${state.id}`,
    );
  }
}

/** Pure state transition; throws on an event that the state machine does not allow. */
export function evolve(state: ServiceCallState | undefined, event: ServiceCallEvent): ServiceCallState {
  if (event.type === 'ServiceCallSubmitted') {
    if (state !== undefined) {
      throw new InvalidTransitionError(`${event.tenantId}/${event.aggregateId} was submitted twice`);
    }
    return {
      tenantId: event.tenantId,
      id: event.aggregateId,
      status: 'Scheduled',
      request: event.data.request,
      dueAt: event.data.dueAt,
      tags: event.data.tags,
      retry: event.data.retry,
      timeoutMs: event.data.timeoutMs,
      nextAttemptAt: null,
      createdAt: event.timestamp,
      updatedAt: event.timestamp,
      attempts: [],
      result: null,
      replayOf: event.data.replayOf ?? null,
      callback:
        event.data.callback === undefined
          ? null
          : { url: event.data.callback.url, on: event.data.callback.on, status: 'Pending', attempts: [] },
      scheduleId: event.data.schedule?.id ?? null,
      scheduledAt: event.data.schedule?.scheduledAt ?? null,
      flowKeys: event.data.flowKeys ?? [],
      version: event.version,
    };
  }
  if (state === undefined) {
    throw new InvalidTransitionError(`${event.type} arrived before ServiceCallSubmitted`);
  }
  if (event.version !== state.version + 1) {
    throw new InvalidTransitionError(`${event.type} has version ${event.version}, expected ${state.version + 1}`);
  }
  const base = { ...state, updatedAt: event.timestamp, version: event.version };
  switch (event.type) {
    case 'DueTimeReached':
      requireStatus(state, event, ['Scheduled']);
      return { ...base, status: 'Running' };
    case 'AttemptFailed':
      requireStatus(state, event, ['Running']);
      requireNextAttempt(state, event, event.data.attempt.attempt);
      return {
        ...base,
        attempts: [...state.attempts, event.data.attempt],
        nextAttemptAt: event.data.retryAt,
      };
    case 'ServiceCallSucceeded':
    case 'ServiceCallFailed': {
      requireStatus(state, event, ['Running']);
      requireNextAttempt(state, event, event.data.attempt.attempt);
      const status = event.type === 'ServiceCallSucceeded' ? 'Succeeded' : 'Failed';
      return {
        ...base,
        nextAttemptAt: null,
        status,
        attempts: [...state.attempts, event.data.attempt],
        result: event.data.result,
        callback: settleCallback(state.callback, status),
      };
    }
    case 'ServiceCallCancelled':
      requireStatus(state, event, ['Scheduled']);
      return { ...base, status: 'Cancelled', callback: settleCallback(state.callback, 'Cancelled') };
    case 'CallbackAttemptFailed':
    case 'CallbackDelivered':
    case 'CallbackFailed': {
      requireStatus(state, event, ['Succeeded', 'Failed', 'Cancelled']);
      const callback = state.callback;
      if (callback?.status !== 'Pending') {
        throw new InvalidTransitionError(`${event.type} without a pending callback on ${state.tenantId}/${state.id}`);
      }
      if (event.data.attempt.attempt !== callback.attempts.length + 1) {
        throw new InvalidTransitionError(
          `${event.type} records callback attempt ${event.data.attempt.attempt}, expected ${callback.attempts.length + 1}`,
        );
      }
      const status =
        event.type === 'CallbackDelivered' ? 'Delivered' : event.type === 'CallbackFailed' ? 'Failed' : 'Pending';
      return { ...base, callback: { ...callback, status, attempts: [...callback.attempts, event.data.attempt] } };
    }
    case 'ServiceCallRescheduled':
      requireStatus(state, event, ['Scheduled']);
      return { ...base, dueAt: event.data.dueAt };
    default: {
      const unhandled: never = event;
      throw new InvalidTransitionError(`unknown event ${JSON.stringify(unhandled)}`);
    }
  }
}

/** The call ended with `outcome`: its callback is due if it was asked for that outcome. */
function settleCallback(callback: CallbackState | null, outcome: CallbackOutcome): CallbackState | null {
  if (callback === null || callback.on.includes(outcome)) return callback;
  return { ...callback, status: 'NotRequired' };
}

/** Finished, with its callback still to deliver: the one thing its workflow still does. */
export function callbackDue(state: ServiceCallState): boolean {
  return TERMINAL_STATUSES.has(state.status) && state.callback?.status === 'Pending';
}

/** The call still needs a live workflow: unfinished, or finished with a callback to deliver. */
export function needsWorkflow(state: ServiceCallState): boolean {
  return !TERMINAL_STATUSES.has(state.status) || callbackDue(state);
}

/**
 * The call a stream holds; undefined for none, and for a stream of another aggregate (a
 * schedule's id shares the stream key space: asked for as a call, it is no call).
 */
export function fold(events: readonly ServiceCallEvent[]): ServiceCallState | undefined {
  if (events.length > 0 && events[0]?.aggregateType !== AGGREGATE_TYPE) return undefined;
  return events.reduce<ServiceCallState | undefined>(evolve, undefined);
}
