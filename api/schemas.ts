import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FromSchema } from 'json-schema-to-ts';
import { CALLBACK_OUTCOMES, HTTP_METHODS } from '../core/events';
import { DEFAULT_RETRY, RETRY_BOUNDS, TIMEOUT_BOUNDS } from '../core/http-policy';
import { CALLBACK_STATUSES, STATUSES } from '../core/service-call';
import {
  acceptedExample,
  badRequestExample,
  batchAnswerExample,
  batchExample,
  bulkAnswerExample,
  CALL_ID,
  SCHEDULE_ID,
  cancelledExample,
  detailExample,
  pageExample,
  replayAnswerExample,
  rescheduledExample,
  submitExample,
} from './examples';

/**
 * JSON schemas of the REST API: validation of input, serialization of output and the OpenAPI
 * document, from one source. The types of request bodies are derived from them (json-schema-to-ts,
 * through Fastify's type provider for it): there is no hand-written twin of a body to forget.
 *
 * A route's documentation sits in its schema: `summary`, `description`, `examples` beside the
 * body or response they illustrate, response `headers`, and two extensions that api/openapi.ts
 * turns into OpenAPI: `x-idempotency-key` (the operation takes an `Idempotency-Key` header; its
 * value says what the key does there) and `x-body-optional` (the body may be left out).
 */

export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['field', 'message'],
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

/** A problem+json answer, by reference to `problemSchema`: the shape of every error response. */
export const problemRef = { $ref: 'Problem#' } as const;

/** The errors every authenticated route can answer: a bad request, no key, the tenant's rate limit, a dependency away. */
export const authErrors = { 400: problemRef, 401: problemRef, 429: problemRef, 503: problemRef } as const;

export const MAX_TAGS = 20;

function range(bounds: { min: number; max: number }) {
  return { minimum: bounds.min, maximum: bounds.max };
}

/** What is kept of a response, per attempt and in the result. */
const responseFields = {
  responseSnippet: { type: ['string', 'null'], description: 'At most 8 KiB of the body.' },
  snippetEncoding: { type: 'string', enum: ['utf8', 'base64'], description: 'base64 when the body is not text.' },
  truncated: { type: 'boolean', description: 'The body was longer than the snippet.' },
  responseHeaders: {
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Response headers on the allowlist (content-type, retry-after, location, …).',
  },
} as const;

const targetUrlSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 8192,
  pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
  description: 'An absolute http or https URL.',
} as const;

/** What a callback defaults to telling: the call's own outcomes, not a cancel the tenant made. */
export const DEFAULT_CALLBACK_ON = ['Succeeded', 'Failed'] as const;

const callbackSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  description:
    'Tells the tenant when the call ends: a signed `POST url` (Standard Webhooks headers, the same `webhook-id` on every retry of it) with `{ type, timestamp, data }`, `data` being the call as `GET /v1/service-calls/{id}` shows it. Retried with backoff until a 2xx (CALLBACK_MAX_ATTEMPTS attempts, 8 over about 15 minutes by default); its outcome never changes the call. The URL follows the rules of `request.url`, egress guard included.',
  properties: {
    url: targetUrlSchema,
    on: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: CALLBACK_OUTCOMES },
      // Not a JSON Schema `default`: the replay body nests this schema in anyOf, where Ajv refuses one.
      description: 'The outcomes that are told; default `["Succeeded", "Failed"]`.',
    },
  },
} as const;

/** One flow key (ADR-0018), as a call names it and as `/v1/flow-limits/{key}` takes it. */
export const flowKeySchema = { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' } as const;

/** A call's flow keys (ADR-0018): the limits, defined at /v1/flow-limits, its attempts obey. */
export const flowKeysSchema = {
  type: 'array',
  maxItems: 3,
  uniqueItems: true,
  items: flowKeySchema,
  description:
    'Up to 3 keys whose flow limits (`PUT /v1/flow-limits/{key}`) every attempt obeys, beside the limit keyed `host:<hostname of request.url>` if defined. A key without a limit limits nothing. A throttled call waits; it is never failed.',
} as const;

const submitBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['request'],
  properties: {
    request: {
      type: 'object',
      additionalProperties: false,
      required: ['method', 'url'],
      properties: {
        method: { type: 'string', enum: HTTP_METHODS },
        url: targetUrlSchema,
        headers: {
          type: 'object',
          maxProperties: 100,
          // RFC 9110 token; names are case-insensitive, so one name given twice → 400.
          propertyNames: { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
          additionalProperties: {
            type: 'string',
            maxLength: 8192,
            // Latin-1 without control characters (tab allowed): what HTTP can carry in a header.
            pattern: '^[\\t\\x20-\\x7e\\x80-\\xff]*$',
          },
          description:
            'Sent as given. Host, Content-Length, Transfer-Encoding, Connection and the other framing headers are set by Punctual and refused here.',
        },
        body: { description: 'A string is sent as is; any other JSON value is serialized.' },
      },
    },
    dueAt: {
      type: 'string',
      format: 'date-time',
      description: 'ISO-8601 instant with offset; absent or in the past means now.',
    },
    tags: {
      type: 'array',
      maxItems: MAX_TAGS,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 64 },
    },
    retry: {
      type: 'object',
      additionalProperties: false,
      description:
        'Retries on network errors, timeouts, 408, 429 and 5xx (never on other 4xx); Retry-After on 429/503 is honoured up to 15 minutes.',
      properties: {
        maxAttempts: { type: 'integer', ...range(RETRY_BOUNDS.maxAttempts), default: DEFAULT_RETRY.maxAttempts },
        initialIntervalMs: {
          type: 'integer',
          ...range(RETRY_BOUNDS.initialIntervalMs),
          default: DEFAULT_RETRY.initialIntervalMs,
        },
        backoffCoefficient: {
          type: 'number',
          ...range(RETRY_BOUNDS.backoffCoefficient),
          default: DEFAULT_RETRY.backoffCoefficient,
        },
        maxIntervalMs: { type: 'integer', ...range(RETRY_BOUNDS.maxIntervalMs), default: DEFAULT_RETRY.maxIntervalMs },
      },
    },
    timeoutMs: {
      type: 'integer',
      ...range(TIMEOUT_BOUNDS),
      description: 'Timeout of each attempt (default HTTP_TIMEOUT_MS, 10 000).',
    },
    callback: callbackSchema,
    flowKeys: flowKeysSchema,
  },
} as const;

/** A submit body as the schema admits it (defaults filled in by the validator stay optional here). */
export type SubmitBody = FromSchema<typeof submitBodySchema, { keepDefaultedPropertiesOptional: true }>;

const submitResponse = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status', 'dueAt', 'createdAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    status: { type: 'string', enum: ['Scheduled'] },
    dueAt: { type: 'string', format: 'date-time' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const replayResponse = {
  type: 'object',
  additionalProperties: false,
  required: [...submitResponse.required, 'replayOf'],
  properties: { ...submitResponse.properties, replayOf: { type: 'string', format: 'uuid' } },
} as const;

const nullableInt = { type: ['integer', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;

export const serviceCallViewSchema = {
  $id: 'ServiceCall',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status', 'request', 'dueAt', 'tags', 'createdAt', 'updatedAt', 'attempts', 'result'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    status: { type: 'string', enum: STATUSES },
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
    dueAt: { type: 'string', format: 'date-time' },
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
    nextAttemptAt: { type: ['string', 'null'], format: 'date-time', description: 'While a retry is pending.' },
    replayOf: {
      type: ['string', 'null'],
      format: 'uuid',
      description: 'The finished call this one replays (POST …/replay); null for a call submitted directly.',
    },
    replays: {
      type: 'array',
      items: { type: 'string', format: 'uuid' },
      description: 'Detail only: the calls that replay this one, oldest first.',
    },
    scheduleId: {
      type: ['string', 'null'],
      format: 'uuid',
      description: 'The schedule this call is a run of (`POST /v1/schedules`); null for a call submitted directly.',
    },
    scheduledAt: {
      type: ['string', 'null'],
      format: 'date-time',
      description:
        "The instant the schedule fired this run for (its idempotency key's instant); null for a call submitted directly.",
    },
    callback: {
      description: 'The callback asked for at submit and its deliveries; null when none was.',
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'on', 'status', 'attempts'],
          properties: {
            url: { type: 'string' },
            on: { type: 'array', items: { type: 'string', enum: CALLBACK_OUTCOMES } },
            status: {
              type: 'string',
              enum: CALLBACK_STATUSES,
              description:
                '`Pending` until delivered or given up on (`Failed`); `NotRequired` when the call ended with an outcome not in `on`.',
            },
            attempts: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['attempt', 'at', 'statusCode', 'latencyMs', 'error'],
                properties: {
                  attempt: { type: 'integer' },
                  at: { type: 'string', format: 'date-time' },
                  statusCode: nullableInt,
                  latencyMs: nullableInt,
                  error: nullableString,
                },
              },
            },
          },
        },
      ],
    },
    links: {
      type: 'object',
      additionalProperties: false,
      description: "Where to look further: the call's workflow in the Temporal Web UI (when its address is known).",
      properties: { temporalUi: { type: 'string' } },
    },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    attempts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['attempt', 'startedAt', 'finishedAt', 'statusCode', 'latencyMs', 'error'],
        properties: {
          attempt: { type: 'integer' },
          startedAt: { type: 'string', format: 'date-time' },
          finishedAt: { type: 'string', format: 'date-time' },
          statusCode: nullableInt,
          latencyMs: nullableInt,
          error: nullableString,
          ...responseFields,
          throttledMs: {
            type: 'integer',
            description: 'How long flow limits held this attempt back; absent when no limit applied to the call.',
          },
        },
      },
    },
    flowKeys: { type: 'array', items: { type: 'string' }, description: 'The flow keys given at submit.' },
    waitingFor: {
      type: 'array',
      items: { type: 'string' },
      description: 'Detail only: the flow-limit keys the call is waiting for now; empty when it is not held back.',
    },
    result: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['outcome', 'statusCode', 'latencyMs', 'responseSnippet', 'truncated', 'error'],
          properties: {
            outcome: { type: 'string', enum: ['Succeeded', 'Failed'] },
            statusCode: nullableInt,
            latencyMs: nullableInt,
            error: nullableString,
            ...responseFields,
          },
        },
      ],
    },
  },
} as const;

const serviceCallRef = { $ref: 'ServiceCall#' } as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', format: 'uuid', examples: [CALL_ID] } },
} as const;

const locationHeader = {
  type: 'string',
  description: 'Where the call can be read: `/v1/service-calls/{id}`.',
  examples: [`/v1/service-calls/${CALL_ID}`],
} as const;

export const submitRouteSchema = {
  operationId: 'submitServiceCall',
  tags: ['service calls'],
  description:
    'Accepts a call to run now or at `dueAt`. The answer means it is stored durably. With an `Idempotency-Key`, the same request again answers 200 with the same id and `Idempotent-Replayed: true`; the same key with another request answers 422.',
  summary: 'Submit a service call',
  'x-idempotency-key':
    'Makes the submit safe to retry: the same key and request give the same call (200 with `Idempotent-Replayed: true`); the same key with another request → 422. Scoped to the tenant.',
  body: { ...submitBodySchema, examples: [submitExample] },
  response: {
    200: {
      ...submitResponse,
      examples: [acceptedExample],
      headers: {
        Location: locationHeader,
        'Idempotent-Replayed': {
          type: 'string',
          enum: ['true'],
          description: 'Present on a replay: this answer is the one given to the first submit with this key.',
          examples: ['true'],
        },
      },
    },
    202: { ...submitResponse, examples: [acceptedExample], headers: { Location: locationHeader } },
    413: problemRef,
    415: problemRef,
    422: problemRef,
    ...authErrors,
  },
} as const;

const BATCH_ITEMS_MAX = 1000;
/** Room for 1,000 ordinary items (a few KiB each); a single submit keeps its 1 MiB. */
export const BATCH_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

/** One item of a batch: a submit body, and the Idempotency-Key the single submit takes as a header. */
export const batchItemSchema = {
  ...submitBodySchema,
  properties: {
    ...submitBodySchema.properties,
    idempotencyKey: {
      type: 'string',
      description: 'As the `Idempotency-Key` header of a single submit: 1–255 printable ASCII characters.',
    },
  },
} as const;

export type BatchItem = FromSchema<typeof batchItemSchema, { keepDefaultedPropertiesOptional: true }>;

export const batchSubmitRouteSchema = {
  operationId: 'submitServiceCallBatch',
  tags: ['service calls'],
  summary: 'Submit up to 1,000 service calls at once',
  description:
    'Each item is judged on its own, exactly as `POST /v1/service-calls` would judge it alone (schema, edge rules, ' +
    'egress policy, `idempotencyKey` with replay and 422 on another request), and answered in `items` in the order ' +
    'given: one bad item never stops the others. The answer is 200 whenever the batch itself is well-formed; every ' +
    'item answered 202 or 200 is stored durably when it is sent. The whole batch is one transaction. It counts ' +
    "against the tenant's rate limit by items: a batch goes ahead when a token is left, and the items beyond it are " +
    'owed, so the next requests wait until they are paid back. More than 1,000 items → 400; a body over 16 MiB → 413.',
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['items'],
    examples: [batchExample],
    properties: {
      items: { type: 'array', minItems: 1, maxItems: BATCH_ITEMS_MAX, items: batchItemSchema },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['items'],
      examples: [batchAnswerExample],
      properties: {
        items: {
          type: 'array',
          items: {
            type: 'object',
            required: ['status'],
            properties: {
              status: {
                type: 'integer',
                enum: [200, 202, 400, 422],
                description: 'What the single submit would have answered: 202 new, 200 replayed, 400 or 422 refused.',
              },
              id: { type: 'string', format: 'uuid' },
              dueAt: { type: 'string', format: 'date-time' },
              createdAt: { type: 'string', format: 'date-time' },
              error: problemRef,
            },
          },
        },
      },
    },
    413: problemRef,
    415: problemRef,
    ...authErrors,
  },
} as const;

export const getRouteSchema = {
  operationId: 'getServiceCall',
  tags: ['service calls'],
  description:
    "A call this tenant owns, with its attempts and result; another tenant's id answers 404 like an unknown one.",
  summary: 'Show one service call',
  params: idParams,
  response: {
    200: { ...serviceCallRef, examples: [detailExample] },
    404: problemRef,
    ...authErrors,
    400: {
      ...problemRef,
      examples: [
        {
          type: 'about:blank',
          title: 'Bad Request',
          status: 400,
          detail: 'params.id must match format "uuid"',
          errors: [{ field: 'params.id', message: 'must match format "uuid"' }],
        },
      ],
    },
  },
} as const;

export const cancelRouteSchema = {
  operationId: 'cancelServiceCall',
  tags: ['service calls'],
  description: 'Cancels a call that is still `Scheduled`: it will never run. Once `Running` or finished → 409.',
  summary: 'Cancel a scheduled service call',
  params: idParams,
  response: {
    202: { ...serviceCallRef, examples: [cancelledExample] },
    404: problemRef,
    409: problemRef,
    ...authErrors,
  },
} as const;

const dueAtProperty = {
  type: 'string',
  description: 'ISO-8601 date-time with an offset, at most 366 days ahead; a past instant means now.',
} as const;

export const rescheduleRouteSchema = {
  operationId: 'rescheduleServiceCall',
  tags: ['service calls'],
  description:
    'Moves a call that is still `Scheduled` to a new `dueAt`, earlier or later: it then runs at the new time and ' +
    'never at the old one. Once `Running`, finished or cancelled → 409. Records `ServiceCallRescheduled`.',
  summary: 'Reschedule a scheduled service call',
  params: idParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['dueAt'],
    properties: { dueAt: dueAtProperty },
    examples: [{ dueAt: '2030-01-01T10:00:00+01:00' }],
  },
  response: {
    200: { ...serviceCallRef, examples: [rescheduledExample] },
    404: problemRef,
    409: problemRef,
    ...authErrors,
  },
} as const;

export const replayRouteSchema = {
  operationId: 'replayServiceCall',
  tags: ['service calls'],
  description:
    'Runs a finished call (`Succeeded`, `Failed` or `Cancelled`) again as a new call with the same request ' +
    '(secret headers and body included), retry policy, timeout and tags, and `replayOf` set to the original. ' +
    "Without `dueAt` the new call is due now. It keeps the original's `callback` unless the body gives one (`null`: none). " +
    'The original is not changed; its detail lists its `replays`. While the original is `Scheduled` or `Running` → 409. An `Idempotency-Key` works as on submit: the same key ' +
    'and body again → 200 with the same new call; the same key with another body → 422.',
  summary: 'Replay a finished service call',
  'x-idempotency-key':
    'Makes the replay safe to retry: the same key and body give the same new call (200 with `Idempotent-Replayed: true`); the same key with another original or body → 422. Shares the tenant’s key space with submits.',
  params: idParams,
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      dueAt: dueAtProperty,
      callback: { anyOf: [callbackSchema, { type: 'null' }] },
      flowKeys: { ...flowKeysSchema, description: "The replay's flow keys; absent keeps the original's." },
    },
    examples: [{ dueAt: '2030-01-01T10:00:00+01:00' }],
  },
  response: {
    202: { ...replayResponse, examples: [replayAnswerExample] },
    200: { ...replayResponse, examples: [replayAnswerExample] },
    404: problemRef,
    409: problemRef,
    422: problemRef,
    ...authErrors,
  },
} as const;

const oneOrMany = (item: Record<string, unknown>, description: string) =>
  ({ anyOf: [item, { type: 'array', items: item, minItems: 1 }], description }) as const;

const bulkBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['filter'],
  properties: {
    filter: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      description:
        'The list\'s filters, as JSON. At least one must be given: an empty filter is refused (400), so "every call" is always said.',
      properties: {
        status: oneOrMany({ type: 'string', enum: STATUSES }, 'Any of these statuses.'),
        tag: oneOrMany({ type: 'string', minLength: 1, maxLength: 64 }, 'Every one of these tags.'),
        createdAfter: { type: 'string', format: 'date-time' },
        createdBefore: { type: 'string', format: 'date-time' },
        dueAfter: { type: 'string', format: 'date-time' },
        dueBefore: { type: 'string', format: 'date-time' },
        replayOf: { type: 'string', format: 'uuid' },
        callbackStatus: { type: 'string', enum: CALLBACK_STATUSES },
      },
    },
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: 10_000,
      default: 10_000,
      description: 'At most this many matching calls, newest first.',
    },
  },
} as const;

const bulkResponse = {
  type: 'object',
  additionalProperties: false,
  required: ['matched', 'affected', 'ids'],
  properties: {
    matched: { type: 'integer', description: 'Calls the filter matched (up to the limit), in any status.' },
    affected: { type: 'integer', description: 'Calls this request changed.' },
    ids: { type: 'array', items: { type: 'string', format: 'uuid' } },
  },
} as const;

export const bulkCancelRouteSchema = {
  operationId: 'bulkCancelServiceCalls',
  tags: ['service calls'],
  description:
    "Cancels every matching call of the caller's tenant that is still `Scheduled`; the others are counted in " +
    '`matched` only. A call that became due meanwhile is skipped, never half-cancelled. `ids`: the calls cancelled.',
  summary: 'Cancel the scheduled calls a filter matches',
  body: { ...bulkBodySchema, examples: [{ filter: { tag: 'billing', status: 'Scheduled' }, limit: 500 }] },
  response: { 200: { ...bulkResponse, examples: [bulkAnswerExample] }, ...authErrors },
} as const;

export const bulkReplayRouteSchema = {
  operationId: 'bulkReplayServiceCalls',
  tags: ['service calls'],
  description:
    "Replays every matching finished call of the caller's tenant (`Succeeded`, `Failed`, `Cancelled`), as " +
    "`POST …/{id}/replay` would. Each replay's idempotency key is derived from this request's `Idempotency-Key` " +
    "(or, without one, from a digest of the body) and the original's id: the same bulk request again replays nothing " +
    'twice (`affected: 0` for those). `ids`: the new calls.',
  summary: 'Replay the finished calls a filter matches',
  'x-idempotency-key':
    'Each replay this request makes is keyed by this key and its original: the same request again replays nothing twice. Without it, a digest of the body stands in.',
  body: { ...bulkBodySchema, examples: [{ filter: { status: ['Failed'], createdAfter: '2030-01-01T00:00:00Z' } }] },
  response: { 200: { ...bulkResponse, examples: [bulkAnswerExample] }, ...authErrors },
} as const;

/** A call as the list shows it: the detail without `attempts` and `replays`. */
export const serviceCallSummarySchema = {
  $id: 'ServiceCallSummary',
  type: 'object',
  additionalProperties: false,
  required: serviceCallViewSchema.required.filter((name) => name !== 'attempts'),
  properties: (({ attempts: _attempts, replays: _replays, ...rest }) => rest)(serviceCallViewSchema.properties),
} as const;

export const serviceCallPageSchema = {
  $id: 'ServiceCallPage',
  type: 'object',
  additionalProperties: false,
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: { $ref: 'ServiceCallSummary#' } },
    nextCursor: {
      type: ['string', 'null'],
      description: 'Pass as `cursor` (with the same filters) for the next page; null on the last page.',
    },
  },
} as const;

export const LIST_LIMIT_DEFAULT = 50;
export const LIST_LIMIT_MAX = 200;

const instantParam = (description: string, example: string) =>
  ({ type: 'string', format: 'date-time', description, examples: [example] }) as const;

/**
 * The list's query string, for the documentation. Validation is `parseListQuery` (api/list-query.ts),
 * which also takes comma-separated statuses and answers 400 for any parameter not listed here.
 */
const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: {
      type: 'array',
      items: { type: 'string', enum: STATUSES },
      uniqueItems: true,
      description: 'Any of these statuses. Repeat the parameter or separate with commas: `status=Failed,Cancelled`.',
      examples: [['Failed', 'Cancelled']],
    },
    tag: {
      type: 'array',
      items: { type: 'string', minLength: 1, maxLength: 64 },
      maxItems: MAX_TAGS,
      description: 'Only calls carrying every one of these tags. Repeat the parameter for more tags.',
      examples: [['billing']],
    },
    createdAfter: instantParam('Created at or after this instant.', '2030-01-01T00:00:00Z'),
    createdBefore: instantParam('Created before this instant.', '2030-01-02T00:00:00Z'),
    dueAfter: instantParam('Due at or after this instant.', '2030-01-01T00:00:00Z'),
    dueBefore: instantParam('Due before this instant.', '2030-01-01T12:00:00+02:00'),
    replayOf: {
      type: 'string',
      format: 'uuid',
      description: 'Only the replays of this call.',
      examples: [CALL_ID],
    },
    callbackStatus: {
      type: 'string',
      enum: CALLBACK_STATUSES,
      description: 'Only calls whose callback is in this status: `Failed` lists the callbacks that gave up.',
      examples: ['Failed'],
    },
    scheduleId: {
      type: 'string',
      format: 'uuid',
      description: "Only the runs of this schedule (another tenant's schedule lists nothing).",
      examples: [SCHEDULE_ID],
    },
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: LIST_LIMIT_MAX,
      default: LIST_LIMIT_DEFAULT,
      description: 'Page size.',
      examples: [20],
    },
    cursor: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]{1,512}$',
      description:
        'Opaque: the `nextCursor` of the previous page. It is bound to the filters it was made with: given with other filters, or not one this API returned → 400.',
      // The document's example is made by api/openapi.ts, for the other parameters' examples.
    },
  },
} as const;

export const listRouteSchema = {
  operationId: 'listServiceCalls',
  tags: ['service calls'],
  summary: 'List service calls',
  description:
    "This tenant's calls, newest first (`createdAt`, then `id`, descending), from the read model: a call submitted a moment ago may take a moment to appear. Filters combine with AND. Walking the pages with `nextCursor` returns every matching call exactly once, also while new calls arrive.",
  querystring: listQuerySchema,
  response: {
    200: { $ref: 'ServiceCallPage#', examples: [pageExample] },
    ...authErrors,
    400: { ...problemRef, examples: [badRequestExample('limit', 'must be an integer from 1 to 200')] },
  },
} as const;

const healthResponse = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ok'] } },
} as const;

const readinessResponse = {
  type: 'object',
  required: ['status', 'checks'],
  properties: {
    status: { type: 'string', enum: ['ready', 'not ready'] },
    checks: {
      type: 'object',
      required: ['postgres', 'temporal'],
      properties: { postgres: { type: 'boolean' }, temporal: { type: 'boolean' } },
    },
  },
} as const;

export const healthRouteSchema = {
  operationId: 'health',
  tags: ['operations'],
  summary: 'Liveness',
  description: 'Answers 200 while the process serves requests. Needs no key.',
  security: [],
  response: { 200: { ...healthResponse, examples: [{ status: 'ok' }] } },
} as const;

export const readinessRouteSchema = {
  operationId: 'readiness',
  tags: ['operations'],
  summary: 'Readiness',
  description: 'Answers 200 only when PostgreSQL and Temporal both answer, else 503. Needs no key.',
  security: [],
  response: {
    200: { ...readinessResponse, examples: [{ status: 'ready', checks: { postgres: true, temporal: true } }] },
    503: { ...readinessResponse, examples: [{ status: 'not ready', checks: { postgres: true, temporal: false } }] },
  },
} as const;

/**
 * The type provider every route plugin uses (`fastify.withTypeProvider<TypeProvider>()`): request
 * bodies, params and query strings are typed from the route's schema. Shared schemas referenced
 * by `$ref` are listed so references resolve to their types too.
 */
export type TypeProvider = JsonSchemaToTsProvider<{
  ValidatorSchemaOptions: { keepDefaultedPropertiesOptional: true };
  SerializerSchemaOptions: { references: [typeof problemSchema, typeof serviceCallViewSchema] };
}>;
