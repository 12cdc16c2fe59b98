import { NotFoundError } from './decider';
import type { CallbackSpec, EventEnvelope, RequestSummary, RetryPolicy, SealedValue, Stored } from './events';

/**
 * The Schedule aggregate (ADR-0017): a recurring service call. Its own stream type, with events,
 * a pure `evolve` and a `decide` in the shape of core/service-call.ts and core/decider.ts. The
 * Temporal Schedule that fires it is derived from this state (projections/schedule-syncer.ts);
 * every run it fires becomes an ordinary service call.
 */

export const SCHEDULE_AGGREGATE_TYPE = 'Schedule';

export const OVERLAP_POLICIES = ['Skip', 'BufferOne', 'AllowAll'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** When runs happen: exactly one of `cron` (5 fields, in `timezone`) and `intervalSeconds`. */
export interface ScheduleSpec {
  cron: string | null;
  intervalSeconds: number | null;
  /** IANA name; cron fields are matched against this zone's wall clock. */
  timezone: string;
  startAt: string | null;
  endAt: string | null;
  jitterSeconds: number;
}

/** What each run submits: a submit body without dueAt, its secrets sealed for the schedule's stream. */
export interface RunTemplate {
  request: RequestSummary;
  /** RequestSecrets sealed with ENCRYPTION_KEY for the schedule's stream; null when nothing is secret. */
  secrets: SealedValue | null;
  tags: string[];
  retry: RetryPolicy;
  timeoutMs: number;
  callback: CallbackSpec | null;
  /**
   * Flow keys every run's call obeys (ADR-0018). Absent when none were given, and in templates
   * recorded before schedules took them; an empty list (a PATCH that cleared them) means none too.
   */
  flowKeys?: string[];
}

export interface ScheduleCreatedData {
  spec: ScheduleSpec;
  run: RunTemplate;
  overlap: OverlapPolicy;
  paused: boolean;
  idempotencyKey: string | null;
}

/** The fields a PATCH gave; absent ones keep their value. */
export interface ScheduleUpdatedData {
  spec?: ScheduleSpec;
  run?: RunTemplate;
}

export type ScheduleCreated = EventEnvelope<typeof SCHEDULE_AGGREGATE_TYPE, 'ScheduleCreated', ScheduleCreatedData>;
export type ScheduleUpdated = EventEnvelope<typeof SCHEDULE_AGGREGATE_TYPE, 'ScheduleUpdated', ScheduleUpdatedData>;
export type SchedulePaused = EventEnvelope<typeof SCHEDULE_AGGREGATE_TYPE, 'SchedulePaused', Record<string, never>>;
export type ScheduleResumed = EventEnvelope<typeof SCHEDULE_AGGREGATE_TYPE, 'ScheduleResumed', Record<string, never>>;
export type ScheduleDeleted = EventEnvelope<typeof SCHEDULE_AGGREGATE_TYPE, 'ScheduleDeleted', Record<string, never>>;

export type ScheduleEvent = ScheduleCreated | ScheduleUpdated | SchedulePaused | ScheduleResumed | ScheduleDeleted;
export type ScheduleEventType = ScheduleEvent['type'];
export type StoredScheduleEvent = Stored<ScheduleEvent>;

export const SCHEDULE_EVENT_TYPES: ReadonlySet<string> = new Set<ScheduleEventType>([
  'ScheduleCreated',
  'ScheduleUpdated',
  'SchedulePaused',
  'ScheduleResumed',
  'ScheduleDeleted',
]);

/** A decision's output: an event's type and data, before its envelope. */
export type ScheduleEventBody = {
  [E in ScheduleEvent as E['type']]: Pick<E, 'type' | 'data'>;
}[ScheduleEventType];

/** As stored: `Ended` is not a state of the stream but of the clock (endAt passed), see statusAt. */
export type StoredScheduleStatus = 'Active' | 'Paused' | 'Deleted';
export const SCHEDULE_STATUSES = ['Active', 'Paused', 'Ended'] as const;
export type ScheduleStatus = (typeof SCHEDULE_STATUSES)[number];

export interface ScheduleState {
  tenantId: string;
  id: string;
  status: StoredScheduleStatus;
  spec: ScheduleSpec;
  run: RunTemplate;
  overlap: OverlapPolicy;
  createdAt: string;
  updatedAt: string;
  version: number;
}

export class InvalidScheduleTransitionError extends Error {
  override name = 'InvalidScheduleTransitionError';
}

/** Pure state transition; throws on an event the schedule's life does not allow. */
export function evolveSchedule(state: ScheduleState | undefined, event: ScheduleEvent): ScheduleState {
  if (event.type === 'ScheduleCreated') {
    if (state !== undefined) {
      throw new InvalidScheduleTransitionError(`${event.tenantId}/${event.aggregateId} was created twice`);
    }
    return {
      tenantId: event.tenantId,
      id: event.aggregateId,
      status: event.data.paused ? 'Paused' : 'Active',
      spec: event.data.spec,
      run: event.data.run,
      overlap: event.data.overlap,
      createdAt: event.timestamp,
      updatedAt: event.timestamp,
      version: event.version,
    };
  }
  if (state === undefined) throw new InvalidScheduleTransitionError(`${event.type} arrived before ScheduleCreated`);
  if (event.version !== state.version + 1) {
    throw new InvalidScheduleTransitionError(
      `${event.type} has version ${event.version}, expected ${state.version + 1}`,
    );
  }
  if (state.status === 'Deleted') {
    throw new InvalidScheduleTransitionError(`${event.type} after ScheduleDeleted on ${state.tenantId}/${state.id}`);
  }
  const base = { ...state, updatedAt: event.timestamp, version: event.version };
  switch (event.type) {
    case 'ScheduleUpdated':
      return { ...base, spec: event.data.spec ?? state.spec, run: event.data.run ?? state.run };
    case 'SchedulePaused':
      return { ...base, status: 'Paused' };
    case 'ScheduleResumed':
      return { ...base, status: 'Active' };
    case 'ScheduleDeleted':
      return { ...base, status: 'Deleted' };
    default: {
      const unhandled: never = event;
      throw new InvalidScheduleTransitionError(`unknown event ${JSON.stringify(unhandled)}`);
    }
  }
}

export function foldSchedule(events: readonly ScheduleEvent[]): ScheduleState | undefined {
  return events.reduce<ScheduleState | undefined>(evolveSchedule, undefined);
}

/** The status the API shows: an active or paused schedule whose endAt has passed has Ended. */
export function statusAt(state: Pick<ScheduleState, 'status' | 'spec'>, now: Date): ScheduleStatus {
  if (state.status === 'Deleted') throw new Error('a deleted schedule has no status to show');
  if (state.spec.endAt !== null && new Date(state.spec.endAt) <= now) return 'Ended';
  return state.status;
}

/** The schedule does not exist, was deleted, or belongs to another tenant: a 404 as for a call. */
export class ScheduleNotFoundError extends NotFoundError {
  override name = 'ScheduleNotFoundError';
}

/** The tenant holds SCHEDULES_PER_TENANT schedules already. */
export class ScheduleLimitError extends Error {
  override name = 'ScheduleLimitError';
  constructor(readonly limit: number) {
    super(`this tenant holds ${limit} schedules, the most it may (SCHEDULES_PER_TENANT); delete one first`);
  }
}

/** A create replayed by its Idempotency-Key after the schedule it made was deleted (409). */
export class ScheduleDeletedError extends Error {
  override name = 'ScheduleDeletedError';
  constructor(readonly scheduleId: string) {
    super(
      `the schedule this Idempotency-Key created (${scheduleId}) has been deleted; use another key to create a new one`,
    );
  }
}

export type ScheduleCommand =
  | { type: 'CreateSchedule'; data: ScheduleCreatedData }
  | { type: 'UpdateSchedule'; data: ScheduleUpdatedData }
  | { type: 'PauseSchedule' }
  | { type: 'ResumeSchedule' }
  | { type: 'DeleteSchedule' };

function live(state: ScheduleState | undefined): ScheduleState {
  if (state === undefined || state.status === 'Deleted') throw new ScheduleNotFoundError('schedule not found');
  return state;
}

/**
 * Pure: the events a command adds to a schedule. Pausing a paused schedule and resuming an active
 * one decide nothing (a retried request is harmless); every command but create on a deleted or
 * unknown schedule is a ScheduleNotFoundError.
 */
export function decideSchedule(command: ScheduleCommand, state: ScheduleState | undefined): ScheduleEventBody[] {
  switch (command.type) {
    case 'CreateSchedule':
      if (state !== undefined) throw new Error('schedule exists already');
      return [{ type: 'ScheduleCreated', data: command.data }];
    case 'UpdateSchedule':
      live(state);
      return [{ type: 'ScheduleUpdated', data: command.data }];
    case 'PauseSchedule':
      return live(state).status === 'Paused' ? [] : [{ type: 'SchedulePaused', data: {} }];
    case 'ResumeSchedule':
      return live(state).status === 'Active' ? [] : [{ type: 'ScheduleResumed', data: {} }];
    case 'DeleteSchedule':
      live(state);
      return [{ type: 'ScheduleDeleted', data: {} }];
    default: {
      const unhandled: never = command;
      throw new Error(`unknown command ${JSON.stringify(unhandled)}`);
    }
  }
}
