import { WAITING_SHOWN } from '../core/flow-limits';
import { FLOW_KEY_EXAMPLE, flowLimitDetailExample, flowLimitExample } from './examples';
import { authErrors, flowKeySchema, problemRef } from './schemas';

/**
 * Schemas of the flow-limit routes (ADR-0018), built as api/schemas.ts builds the call routes':
 * validation, serialization, types and OpenAPI from one source. A key is validated as a call's
 * `flowKeys` items are (one schema).
 */

const keyParams = {
  type: 'object',
  required: ['key'],
  properties: {
    key: {
      ...flowKeySchema,
      description: '1–128 characters of `A-Z a-z 0-9 . _ : -`; `host:<hostname>` limits every call to that host.',
      examples: [FLOW_KEY_EXAMPLE],
    },
  },
} as const;

const limitProperties = {
  key: { type: 'string' },
  ratePerSecond: {
    type: ['number', 'null'],
    description: 'Attempts per second on average (token bucket); null: no rate limit.',
  },
  burst: { type: ['integer', 'null'], description: 'Attempts at once after a quiet spell; null without a rate.' },
  concurrency: {
    type: ['integer', 'null'],
    description: 'Attempts in flight at once across all workers; null: no concurrency limit.',
  },
  createdAt: { type: 'string', format: 'date-time' },
  updatedAt: { type: 'string', format: 'date-time' },
} as const;

const limitRequired = ['key', 'ratePerSecond', 'burst', 'concurrency', 'createdAt', 'updatedAt'] as const;

const limitSchema = {
  type: 'object',
  additionalProperties: false,
  required: limitRequired,
  properties: limitProperties,
} as const;

const countProperties = {
  inFlight: { type: 'integer', description: 'Attempts holding a place of this limit now.' },
  waiting: { type: 'integer', description: 'Calls waiting for this limit now.' },
} as const;

/** A limit in the list: the limit and its counts, so a console needs no request per key. */
const limitSummarySchema = {
  type: 'object',
  additionalProperties: false,
  required: [...limitRequired, 'inFlight', 'waiting'],
  properties: { ...limitProperties, ...countProperties },
} as const;

const limitDetailSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...limitRequired, 'inFlight', 'waiting', 'waitingCalls'],
  properties: {
    ...limitProperties,
    ...countProperties,
    waitingCalls: {
      type: 'array',
      description: `The waiting calls admitted next (oldest dueAt first), at most ${WAITING_SHOWN}.`,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'dueAt', 'since'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          dueAt: { type: 'string', format: 'date-time' },
          since: { type: 'string', format: 'date-time', description: 'When the limit first held it back.' },
        },
      },
    },
  },
} as const;

const putBodySchema = {
  type: 'object',
  additionalProperties: false,
  description: 'At least one of `ratePerSecond` and `concurrency`.',
  properties: {
    ratePerSecond: { type: 'number', exclusiveMinimum: 0, maximum: 100_000 },
    burst: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000,
      description: 'Default: ceil(ratePerSecond). Only with `ratePerSecond`.',
    },
    concurrency: { type: 'integer', minimum: 1, maximum: 100_000 },
  },
} as const;

const tags = ['flow limits'];

export const putFlowLimitRouteSchema = {
  operationId: 'putFlowLimit',
  tags,
  summary: 'Define or replace a flow limit',
  description:
    'Every attempt of a call naming this key in `flowKeys` (and, for `host:<hostname>`, of every call to that host) is sent only when the limit admits it; otherwise the call waits, oldest `dueAt` first, and is never failed. A change applies to the calls already waiting: they are woken to ask again at once (should that fail, they ask by themselves within FLOW_MAX_WAIT_MS, or FLOW_MAX_SLOT_WAIT_MS for a call holding a send slot).',
  params: keyParams,
  body: { ...putBodySchema, examples: [{ ratePerSecond: 10, concurrency: 2 }] },
  response: { 200: { ...limitSchema, examples: [flowLimitExample] }, ...authErrors },
} as const;

export const listFlowLimitsRouteSchema = {
  operationId: 'listFlowLimits',
  tags,
  summary: 'List the flow limits',
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['items'],
      properties: { items: { type: 'array', items: limitSummarySchema } },
      examples: [{ items: [{ ...flowLimitExample, inFlight: 2, waiting: 1 }] }],
    },
    ...authErrors,
  },
} as const;

export const getFlowLimitRouteSchema = {
  operationId: 'getFlowLimit',
  tags,
  summary: 'Show a flow limit, its attempts in flight and its waiting calls',
  params: keyParams,
  response: {
    200: { ...limitDetailSchema, examples: [flowLimitDetailExample] },
    404: problemRef,
    ...authErrors,
  },
} as const;

export const deleteFlowLimitRouteSchema = {
  operationId: 'deleteFlowLimit',
  tags,
  summary: 'Delete a flow limit',
  description: 'The calls waiting for it are woken and go ahead (should that fail, when they next ask by themselves).',
  params: keyParams,
  response: { 204: { type: 'null', description: 'Deleted.' }, 404: problemRef, ...authErrors },
} as const;
