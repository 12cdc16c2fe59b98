import type { FromSchema } from 'json-schema-to-ts';
import { OVERLAP_POLICIES, SCHEDULE_STATUSES } from '../core/schedule';
import {
  badRequestExample,
  SCHEDULE_ID,
  scheduleCreateExample,
  scheduleExample,
  schedulePageExample,
  triggerAnswerExample,
} from './examples';
import { authErrors, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, MAX_TAGS, problemRef, submitRouteSchema } from './schemas';

/**
 * Schemas of the schedule routes (ADR-0017), built as api/schemas.ts builds the call routes':
 * validation, serialization, types and OpenAPI from one source. A schedule's run fields are the
 * submit body's, less `dueAt` (each run is due at its scheduled instant).
 */

const submitFields = submitRouteSchema.body.properties;

/** The longest interval: a year and a day. */
export const MAX_INTERVAL_SECONDS = 366 * 24 * 3600;
export const MAX_JITTER_SECONDS = 24 * 3600;

const specFields = {
  cron: {
    type: 'string',
    minLength: 1,
    maxLength: 200,
    description:
      'Five fields, `minute hour day-of-month month day-of-week` (numbers, `*`, ranges, lists, `/steps`, month and day names), matched against the wall clock of `timezone`. Exactly one of `cron` and `intervalSeconds`.',
  },
  intervalSeconds: {
    type: 'integer',
    minimum: 1,
    maximum: MAX_INTERVAL_SECONDS,
    description:
      'A run every this many seconds, counted from the Unix epoch (so `3600` runs on the hour). Exactly one of `cron` and `intervalSeconds`.',
  },
  timezone: {
    type: 'string',
    minLength: 1,
    maxLength: 64,
    description:
      'IANA time zone of the cron fields (default `UTC`). On a daylight-saving change the runs follow the wall clock: a 02:30 run does not happen on the spring-forward day (02:30 does not exist then), and a 01:30 run happens twice on the fall-back day.',
  },
  startAt: { type: 'string', format: 'date-time', description: 'No run before this instant.' },
  endAt: {
    type: 'string',
    format: 'date-time',
    description: 'No run after this instant; the schedule is then `Ended`. Must be after `startAt`.',
  },
  jitterSeconds: {
    type: 'integer',
    minimum: 0,
    maximum: MAX_JITTER_SECONDS,
    description: 'Each run starts up to this many seconds late, at random (spreads load); default 0.',
  },
} as const;

const runFields = {
  request: submitFields.request,
  retry: submitFields.retry,
  timeoutMs: submitFields.timeoutMs,
  tags: submitFields.tags,
  callback: submitFields.callback,
  flowKeys: submitFields.flowKeys,
} as const;

const createBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['request'],
  properties: {
    ...specFields,
    ...runFields,
    paused: { type: 'boolean', description: 'Create it paused (default false).' },
    overlap: {
      type: 'string',
      enum: OVERLAP_POLICIES,
      description:
        "What a run does while the previous run's submission is still being made: `AllowAll` (default) submits every run whatever the previous one does; `Skip` and `BufferOne` are Temporal's overlap policies.",
    },
  },
} as const;

export type ScheduleCreateBody = FromSchema<typeof createBodySchema, { keepDefaultedPropertiesOptional: true }>;

const patchBodySchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...specFields,
    ...runFields,
    startAt: { ...specFields.startAt, type: ['string', 'null'] },
    endAt: { ...specFields.endAt, type: ['string', 'null'] },
    callback: { anyOf: [submitFields.callback, { type: 'null' }] },
  },
} as const;

export type SchedulePatchBody = FromSchema<typeof patchBodySchema, { keepDefaultedPropertiesOptional: true }>;

const nullableDate = { type: ['string', 'null'], format: 'date-time' } as const;

/** A schedule as the API shows it; inline in each response (the serializer's types need no $ref). */
export const scheduleViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'status',
    'spec',
    'overlap',
    'request',
    'tags',
    'retry',
    'timeoutMs',
    'callback',
    'flowKeys',
    'nextRunAts',
    'recentRuns',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: { type: 'string', format: 'uuid' },
    status: {
      type: 'string',
      enum: SCHEDULE_STATUSES,
      description: '`Ended` once `endAt` has passed (whether it was active or paused).',
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['cron', 'intervalSeconds', 'timezone', 'startAt', 'endAt', 'jitterSeconds'],
      properties: {
        cron: { type: ['string', 'null'] },
        intervalSeconds: { type: ['integer', 'null'] },
        timezone: { type: 'string' },
        startAt: nullableDate,
        endAt: nullableDate,
        jitterSeconds: { type: 'integer' },
      },
    },
    overlap: { type: 'string', enum: OVERLAP_POLICIES },
    request: {
      type: 'object',
      additionalProperties: false,
      required: ['method', 'url', 'headers'],
      properties: {
        method: { type: 'string' },
        url: { type: 'string' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    tags: { type: 'array', items: { type: 'string' } },
    retry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxAttempts: { type: 'integer' },
        initialIntervalMs: { type: 'integer' },
        backoffCoefficient: { type: 'number' },
        maxIntervalMs: { type: 'integer' },
      },
    },
    timeoutMs: { type: 'integer' },
    callback: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'on'],
          properties: { url: { type: 'string' }, on: { type: 'array', items: { type: 'string' } } },
        },
      ],
    },
    flowKeys: {
      type: 'array',
      items: { type: 'string' },
      description: "The flow keys every run's call obeys (ADR-0018); empty when none.",
    },
    nextRunAts: {
      type: 'array',
      maxItems: 5,
      items: { type: 'string', format: 'date-time' },
      description:
        "The next (at most) 5 instants a run is due, as Temporal's scheduler computes them; empty while paused or ended, and while the Temporal Schedule is being made.",
    },
    recentRuns: {
      type: 'array',
      maxItems: 5,
      description: 'The 5 latest runs, newest first: each an ordinary service call.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['scheduledAt', 'serviceCallId'],
        properties: {
          scheduledAt: { type: 'string', format: 'date-time' },
          serviceCallId: { type: 'string', format: 'uuid' },
        },
      },
    },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const scheduleRef = scheduleViewSchema;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', format: 'uuid', examples: [SCHEDULE_ID] } },
} as const;

const scheduleLocation = {
  type: 'string',
  description: 'Where the schedule can be read: `/v1/schedules/{id}`.',
  examples: [`/v1/schedules/${SCHEDULE_ID}`],
} as const;

const tags = ['schedules'];

export const createScheduleRouteSchema = {
  operationId: 'createSchedule',
  tags,
  summary: 'Create a schedule',
  description:
    'Runs a request on a cadence: every run is an ordinary service call (listed with `GET /v1/service-calls?scheduleId=`), created with the idempotency key `schedule:<id>:<scheduled instant>`, so a run is created once. Exactly one of `cron` and `intervalSeconds`; a bad cron, an unknown time zone or `endAt` before `startAt` → 400 naming the field. A tenant holds at most SCHEDULES_PER_TENANT (1,000) schedules: beyond → 409. The `Idempotency-Key` of a schedule since deleted → 409 (use another key).',
  'x-idempotency-key':
    'Makes the create safe to retry: the same key and body give the same schedule (200 with `Idempotent-Replayed: true`); the same key with another body → 422. Shares the tenant’s key space with submits.',
  body: { ...createBodySchema, examples: [scheduleCreateExample] },
  response: {
    201: { ...scheduleRef, examples: [scheduleExample], headers: { Location: scheduleLocation } },
    200: {
      ...scheduleRef,
      examples: [scheduleExample],
      headers: {
        Location: scheduleLocation,
        'Idempotent-Replayed': {
          type: 'string',
          enum: ['true'],
          description: 'Present on a replay: the schedule the first create with this key made.',
          examples: ['true'],
        },
      },
    },
    409: problemRef,
    422: problemRef,
    ...authErrors,
    400: {
      ...problemRef,
      examples: [badRequestExample('cron', 'must have 5 fields (minute hour day-of-month month day-of-week), got 6')],
    },
  },
} as const;

export const getScheduleRouteSchema = {
  operationId: 'getSchedule',
  tags,
  summary: 'Show one schedule',
  description: "A schedule this tenant holds, with its next runs and latest runs; another tenant's id → 404.",
  params: idParams,
  response: { 200: { ...scheduleRef, examples: [scheduleExample] }, 404: problemRef, ...authErrors },
} as const;

export const patchScheduleRouteSchema = {
  operationId: 'updateSchedule',
  tags,
  summary: 'Change a schedule',
  description:
    'Changes the given fields (spec, request, retry, timeoutMs, tags, callback, flowKeys; `null` clears `startAt`, `endAt` or `callback`, `[]` clears `flowKeys`); the others keep their value. Takes effect from the next run; runs already created are not changed. Giving `cron` replaces an `intervalSeconds` and the other way round.',
  params: idParams,
  body: { ...patchBodySchema, examples: [{ cron: '30 8 * * 1-5', timezone: 'Europe/Paris' }] },
  response: { 200: { ...scheduleRef, examples: [scheduleExample] }, 404: problemRef, 422: problemRef, ...authErrors },
} as const;

const commandRoute = (operationId: string, summary: string, description: string) =>
  ({
    operationId,
    tags,
    summary,
    description,
    params: idParams,
    response: { 200: { ...scheduleRef, examples: [scheduleExample] }, 404: problemRef, ...authErrors },
  }) as const;

export const pauseScheduleRouteSchema = commandRoute(
  'pauseSchedule',
  'Pause a schedule',
  'No run is made while it is paused (runs missed meanwhile are not made up on resume). Pausing a paused schedule changes nothing.',
);

export const resumeScheduleRouteSchema = commandRoute(
  'resumeSchedule',
  'Resume a paused schedule',
  'Runs start again at the next instant the spec gives. Resuming an active schedule changes nothing.',
);

export const triggerScheduleRouteSchema = {
  operationId: 'triggerSchedule',
  tags,
  summary: 'Run a schedule once now',
  description:
    'Makes one run now, beside the regular ones (also while paused): an ordinary service call due now, whose id is answered.',
  params: idParams,
  response: {
    202: {
      type: 'object',
      additionalProperties: false,
      required: ['scheduleId', 'serviceCallId', 'scheduledAt'],
      properties: {
        scheduleId: { type: 'string', format: 'uuid' },
        serviceCallId: { type: 'string', format: 'uuid' },
        scheduledAt: { type: 'string', format: 'date-time' },
      },
      examples: [triggerAnswerExample],
      headers: {
        Location: {
          type: 'string',
          description: 'Where the new call can be read.',
          examples: [`/v1/service-calls/${triggerAnswerExample.serviceCallId}`],
        },
      },
    },
    404: problemRef,
    ...authErrors,
  },
} as const;

export const deleteScheduleRouteSchema = {
  operationId: 'deleteSchedule',
  tags,
  summary: 'Delete a schedule',
  description: 'No run is made after it; runs already created go on as ordinary calls. Then 404 like an unknown id.',
  params: idParams,
  response: { 204: { type: 'null', description: 'Deleted.' }, 404: problemRef, ...authErrors },
} as const;

export const listSchedulesRouteSchema = {
  operationId: 'listSchedules',
  tags,
  summary: 'List schedules',
  description: "This tenant's schedules, newest first, in pages (`nextCursor`). Filters combine with AND.",
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      status: {
        type: 'string',
        enum: SCHEDULE_STATUSES,
        description: 'Only schedules in this status.',
        examples: ['Active'],
      },
      tag: {
        anyOf: [
          { type: 'string', minLength: 1, maxLength: 64 },
          { type: 'array', items: { type: 'string', minLength: 1, maxLength: 64 }, maxItems: MAX_TAGS },
        ],
        description: 'Only schedules carrying every one of these tags. Repeat the parameter for more tags.',
        examples: ['reports'],
      },
      limit: {
        type: 'string',
        pattern: '^[0-9]{1,3}$',
        description: `Page size, 1–${LIST_LIMIT_MAX} (default ${LIST_LIMIT_DEFAULT}).`,
        examples: ['20'],
      },
      cursor: {
        type: 'string',
        pattern: '^[A-Za-z0-9_-]{1,512}$',
        description: 'Opaque: the `nextCursor` of the previous page, with the same filters.',
        examples: [
          'eyJ0IjoiMjAyOS0xMi0wMVQwODowMDowMC4wMDAwMDBaIiwiaSI6IjhkMmY0YTYxLTBjM2ItNGU3YS1iNWQ5LTZlMWYyYTNjNGI1MCJ9',
        ],
      },
    },
  },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['items', 'nextCursor'],
      properties: {
        items: { type: 'array', items: scheduleRef },
        nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last.' },
      },
      examples: [schedulePageExample],
    },
    ...authErrors,
  },
} as const;
