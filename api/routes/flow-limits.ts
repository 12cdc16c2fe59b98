import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../../core/commands';
import {
  defaultBurst,
  deleteFlowLimit,
  getFlowLimit,
  listFlowLimits,
  putFlowLimit,
  WAITING_SHOWN,
} from '../../core/flow-limits';
import type { AppDeps } from '../app';
import { BadRequestError } from '../problem';
import type { TypeProvider } from '../schemas';

/**
 * The tenant's flow limits (ADR-0018): per key, a rate (token bucket) and a concurrency, shared by
 * every worker. Calls name keys in `flowKeys`; `host:<hostname>` applies to every call to a host.
 */

const problemRef = { $ref: 'Problem#' } as const;
const errors = { 400: problemRef, 401: problemRef, 429: problemRef, 503: problemRef } as const;

const KEY_EXAMPLE = 'customer:42';

const keyParams = {
  type: 'object',
  required: ['key'],
  properties: {
    key: {
      type: 'string',
      pattern: '^[A-Za-z0-9._:-]{1,128}$',
      description: '1–128 characters of `A-Z a-z 0-9 . _ : -`; `host:<hostname>` limits every call to that host.',
      examples: [KEY_EXAMPLE],
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

const limitExample = {
  key: KEY_EXAMPLE,
  ratePerSecond: 10,
  burst: 10,
  concurrency: 2,
  createdAt: '2030-01-01T09:00:00.000Z',
  updatedAt: '2030-01-01T09:00:00.000Z',
} as const;

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

const putBody = {
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

const notFound = (key: string) => new NotFoundError(`flow limit ${key} not found`);

export async function flowLimitRoutes(instance: FastifyInstance, deps: AppDeps): Promise<void> {
  const fastify = instance.withTypeProvider<TypeProvider>();

  fastify.put(
    '/v1/flow-limits/:key',
    {
      schema: {
        operationId: 'putFlowLimit',
        tags: ['flow limits'],
        summary: 'Define or replace a flow limit',
        description:
          'Every attempt of a call naming this key in `flowKeys` (and, for `host:<hostname>`, of every call to that host) is sent only when the limit admits it; otherwise the call waits, oldest `dueAt` first, and is never failed. A change applies to the calls already waiting when they next ask (within FLOW_MAX_WAIT_MS).',
        params: keyParams,
        body: { ...putBody, examples: [{ ratePerSecond: 10, concurrency: 2 }] },
        response: { 200: { ...limitSchema, examples: [limitExample] }, ...errors },
      },
    },
    async (request) => {
      const { ratePerSecond, burst, concurrency } = request.body;
      if (ratePerSecond === undefined && concurrency === undefined) {
        throw new BadRequestError('ratePerSecond', 'or concurrency must be given (a limit needs at least one)');
      }
      if (burst !== undefined && ratePerSecond === undefined) {
        throw new BadRequestError('burst', 'needs ratePerSecond (a burst is the size of a rate’s bucket)');
      }
      const limit = await putFlowLimit(deps.db, request.tenantId, request.params.key, {
        ratePerSecond: ratePerSecond ?? null,
        burst: ratePerSecond === undefined ? null : (burst ?? defaultBurst(ratePerSecond)),
        concurrency: concurrency ?? null,
      });
      request.log.info({ tenantId: request.tenantId, flowKey: limit.key }, 'flow limit defined');
      return limit;
    },
  );

  fastify.get(
    '/v1/flow-limits',
    {
      schema: {
        operationId: 'listFlowLimits',
        tags: ['flow limits'],
        summary: 'List the flow limits',
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['items'],
            properties: { items: { type: 'array', items: limitSummarySchema } },
            examples: [{ items: [{ ...limitExample, inFlight: 2, waiting: 1 }] }],
          },
          ...errors,
        },
      },
    },
    async (request) => ({ items: await listFlowLimits(deps.db, request.tenantId) }),
  );

  fastify.get(
    '/v1/flow-limits/:key',
    {
      schema: {
        operationId: 'getFlowLimit',
        tags: ['flow limits'],
        summary: 'Show a flow limit, its attempts in flight and its waiting calls',
        params: keyParams,
        response: {
          200: {
            ...limitDetailSchema,
            examples: [
              {
                ...limitExample,
                inFlight: 2,
                waiting: 1,
                waitingCalls: [
                  {
                    id: '3f6c8b52-6a1e-4b8e-9d4f-2a7c1e5b9d10',
                    dueAt: '2030-01-01T09:00:00.000Z',
                    since: '2030-01-01T09:00:00.012Z',
                  },
                ],
              },
            ],
          },
          404: problemRef,
          ...errors,
        },
      },
    },
    async (request) => {
      const limit = await getFlowLimit(deps.db, request.tenantId, request.params.key);
      if (limit === undefined) throw notFound(request.params.key);
      return limit;
    },
  );

  fastify.delete(
    '/v1/flow-limits/:key',
    {
      schema: {
        operationId: 'deleteFlowLimit',
        tags: ['flow limits'],
        summary: 'Delete a flow limit',
        description: 'The calls waiting for it go ahead when they next ask (within FLOW_MAX_WAIT_MS).',
        params: keyParams,
        response: { 204: { type: 'null', description: 'Deleted.' }, 404: problemRef, ...errors },
      },
    },
    async (request, reply) => {
      if (!(await deleteFlowLimit(deps.db, request.tenantId, request.params.key))) throw notFound(request.params.key);
      request.log.info({ tenantId: request.tenantId, flowKey: request.params.key }, 'flow limit deleted');
      return reply.code(204).send(null);
    },
  );
}
