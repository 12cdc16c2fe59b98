import { HTTP_METHODS } from '../core/events';
import { STATUSES } from '../core/service-call';

/**
 * JSON schemas of the REST API: validation of input, serialization of output, and (later) the
 * OpenAPI document, from one source.
 */

export const problemSchema = {
  $id: 'Problem',
  type: 'object',
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
        required: ['field', 'message'],
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

const problemRef = { $ref: 'Problem#' } as const;

export const MAX_TAGS = 20;

export const submitBodySchema = {
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
        url: { type: 'string', minLength: 1, maxLength: 8192 },
        headers: {
          type: 'object',
          maxProperties: 100,
          additionalProperties: { type: 'string', maxLength: 8192 },
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
  },
} as const;

export interface SubmitBody {
  request: {
    method: (typeof HTTP_METHODS)[number];
    url: string;
    headers?: Record<string, string>;
    body?: unknown;
  };
  dueAt?: string;
  tags?: string[];
}

const submitResponse = {
  type: 'object',
  required: ['id', 'status', 'dueAt', 'createdAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    status: { type: 'string', enum: ['Scheduled'] },
    dueAt: { type: 'string', format: 'date-time' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const nullableInt = { type: ['integer', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;

export const serviceCallViewSchema = {
  $id: 'ServiceCall',
  type: 'object',
  required: ['id', 'status', 'request', 'dueAt', 'tags', 'createdAt', 'updatedAt', 'attempts', 'result'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    status: { type: 'string', enum: STATUSES },
    request: {
      type: 'object',
      required: ['method', 'url', 'headers'],
      properties: {
        method: { type: 'string' },
        url: { type: 'string' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    dueAt: { type: 'string', format: 'date-time' },
    tags: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    attempts: {
      type: 'array',
      items: {
        type: 'object',
        required: ['attempt', 'startedAt', 'finishedAt', 'statusCode', 'latencyMs', 'error'],
        properties: {
          attempt: { type: 'integer' },
          startedAt: { type: 'string', format: 'date-time' },
          finishedAt: { type: 'string', format: 'date-time' },
          statusCode: nullableInt,
          latencyMs: nullableInt,
          error: nullableString,
        },
      },
    },
    result: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          required: ['outcome', 'statusCode', 'latencyMs', 'responseSnippet', 'truncated', 'error'],
          properties: {
            outcome: { type: 'string', enum: ['Succeeded', 'Failed'] },
            statusCode: nullableInt,
            latencyMs: nullableInt,
            responseSnippet: nullableString,
            truncated: { type: 'boolean' },
            error: nullableString,
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
  properties: { id: { type: 'string', format: 'uuid' } },
} as const;

const authErrors = { 400: problemRef, 401: problemRef, 503: problemRef } as const;

export const submitRouteSchema = {
  summary: 'Submit a service call',
  body: submitBodySchema,
  response: { 200: submitResponse, 202: submitResponse, 413: problemRef, 415: problemRef, 422: problemRef, ...authErrors },
} as const;

export const getRouteSchema = {
  summary: 'Show one service call',
  params: idParams,
  response: { 200: serviceCallRef, 404: problemRef, ...authErrors },
} as const;

export const cancelRouteSchema = {
  summary: 'Cancel a scheduled service call',
  params: idParams,
  response: { 202: serviceCallRef, 404: problemRef, 409: problemRef, ...authErrors },
} as const;
