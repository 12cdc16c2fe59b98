import { readFileSync } from 'node:fs';
import path from 'node:path';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { encodeCursor, parseListQuery } from './list-query';

/**
 * The OpenAPI 3.1 document, generated from the route schemas by @fastify/swagger and served at
 * /openapi.json, with Swagger UI at /docs (its assets ship in the package: no CDN, works offline).
 * What JSON Schema cannot say (problem+json media type, response headers, examples, the
 * Idempotency-Key header) is added here, keyed by operationId.
 */

type Json = Record<string, unknown>;

const PROBLEM_REF = '#/components/schemas/Problem';
const PROBLEM_MEDIA = 'application/problem+json';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const CALL_ID = '3f6c8b52-6a1e-4b8e-9d4f-2a7c1e5b9d10';
const CREATED_AT = '2029-12-31T18:00:00.000Z';
const DUE_AT = '2030-01-01T09:00:00.000Z';

const requestExample = {
  request: {
    method: 'POST',
    url: 'https://api.example.com/invoices/42/remind',
    headers: { 'content-type': 'application/json', authorization: 'Bearer s3cr3t' },
    body: { invoiceId: 42, channel: 'email' },
  },
  // Replaced by a time a day ahead when the document is made: a call is due at most 366 days ahead.
  dueAt: '2030-01-01T10:00:00+01:00',
  tags: ['billing', 'reminders'],
  retry: { maxAttempts: 3 },
  timeoutMs: 5000,
};

/** An instant a day from now, on the hour: a dueAt the API accepts today. */
function tomorrow(): string {
  const at = new Date(Date.now() + 24 * 3600 * 1000);
  at.setUTCMinutes(0, 0, 0);
  return at.toISOString().replace('.000Z', 'Z');
}

/** Request examples that carry a dueAt, made when the document is: a call is due at most 366 days ahead. */
const DATED_REQUESTS: Record<string, () => Json> = {
  submitServiceCall: () => ({ ...requestExample, dueAt: tomorrow() }),
  submitServiceCallBatch: () => ({
    items: [
      { ...requestExample, dueAt: tomorrow(), idempotencyKey: 'invoice-42-reminder' },
      { request: { method: 'GET', url: 'http://localhost:8080/admin' } },
    ],
  }),
  rescheduleServiceCall: () => ({ dueAt: tomorrow() }),
  replayServiceCall: () => ({ dueAt: tomorrow() }),
};

/**
 * A cursor is bound to the filters it was made with: the example cursor is one made for the
 * other parameters' examples, so that the examples together make a request the API accepts.
 */
function exampleCursor(parameters: unknown[]): string | undefined {
  const query: Record<string, unknown> = {};
  for (const parameter of parameters) {
    const p = asRecord(parameter);
    if (p?.in !== 'query' || typeof p.name !== 'string' || p.name === 'cursor' || p.example === undefined) continue;
    const example: unknown = p.example;
    if (Array.isArray(example)) query[p.name] = example;
    else if (typeof example === 'string' || typeof example === 'number') query[p.name] = String(example);
  }
  try {
    const { limit: _limit, ...filter } = parseListQuery(query);
    return encodeCursor({ createdAt: '2030-01-01T00:00:00.000000Z', id: CALL_ID }, filter);
  } catch {
    return undefined;
  }
}

/** What the example call's one attempt got back: in its attempt record and as its result. */
const answerExample = {
  statusCode: 202,
  latencyMs: 171,
  error: null,
  responseSnippet: '{"queued":true}',
  snippetEncoding: 'utf8',
  truncated: false,
  responseHeaders: { 'content-type': 'application/json' },
};

const summaryExample = {
  id: CALL_ID,
  status: 'Succeeded',
  request: {
    method: 'POST',
    url: 'https://api.example.com/invoices/42/remind',
    headers: { 'content-type': 'application/json', authorization: '[REDACTED]' },
  },
  dueAt: DUE_AT,
  tags: ['billing', 'reminders'],
  retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
  timeoutMs: 5000,
  nextAttemptAt: null,
  createdAt: CREATED_AT,
  updatedAt: '2030-01-01T09:00:00.182Z',
  result: { outcome: 'Succeeded', ...answerExample },
};

const detailExample = {
  ...summaryExample,
  attempts: [
    {
      attempt: 1,
      startedAt: '2030-01-01T09:00:00.004Z',
      finishedAt: '2030-01-01T09:00:00.175Z',
      ...answerExample,
    },
  ],
};

const cancelledExample = {
  ...detailExample,
  status: 'Cancelled',
  updatedAt: '2029-12-31T20:15:00.000Z',
  attempts: [],
  result: null,
};

const problems: Record<string, Json> = {
  '400': {
    type: 'about:blank',
    title: 'Bad Request',
    status: 400,
    detail: 'request.url: must use http or https',
    errors: [{ field: 'request.url', message: 'request.url: must use http or https' }],
  },
  '401': { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'unknown or revoked API key' },
  '404': { type: 'about:blank', title: 'Not Found', status: 404, detail: `service call ${CALL_ID} not found` },
  '409': {
    type: 'about:blank',
    title: 'Conflict',
    status: 409,
    detail: 'the call is Running and can no longer be cancelled',
  },
  '413': {
    type: 'about:blank',
    title: 'Payload Too Large',
    status: 413,
    detail: 'the request body is larger than 1 MiB',
  },
  '415': { type: 'about:blank', title: 'Unsupported Media Type', status: 415, detail: 'send application/json' },
  '422': {
    type: 'about:blank',
    title: 'Unprocessable Content',
    status: 422,
    detail: 'this Idempotency-Key was already used with a different request',
  },
  '429': { type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'rate limit exceeded; retry in 1 s' },
  '503': {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'the database is unavailable; retry shortly',
  },
};

/** Problems that read better per operation than the generic ones above. */
const OPERATION_PROBLEMS: Record<string, Record<string, Json>> = {
  listServiceCalls: {
    '400': {
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'limit: must be an integer from 1 to 200',
      errors: [{ field: 'limit', message: 'limit: must be an integer from 1 to 200' }],
    },
  },
  getServiceCall: {
    '400': {
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'params.id must match format "uuid"',
      errors: [{ field: 'params.id', message: 'must match format "uuid"' }],
    },
  },
};

/** Operations that take an Idempotency-Key header, and what it does for each. */
const IDEMPOTENT_OPERATIONS: Record<string, string> = {
  bulkReplayServiceCalls:
    'Each replay this request makes is keyed by this key and its original: the same request again replays nothing twice. Without it, a digest of the body stands in.',
  submitServiceCall:
    'Makes the submit safe to retry: the same key and request give the same call (200 with `Idempotent-Replayed: true`); the same key with another request → 422. Scoped to the tenant.',
  replayServiceCall:
    'Makes the replay safe to retry: the same key and body give the same new call (200 with `Idempotent-Replayed: true`); the same key with another original or body → 422. Shares the tenant’s key space with submits.',
};

/** Per operation: the request body example and one example per success status. */
const EXAMPLES: Record<string, { request?: unknown; responses: Record<string, unknown> }> = {
  submitServiceCall: {
    request: requestExample,
    responses: {
      '202': { id: CALL_ID, status: 'Scheduled', dueAt: DUE_AT, createdAt: CREATED_AT },
      '200': { id: CALL_ID, status: 'Scheduled', dueAt: DUE_AT, createdAt: CREATED_AT },
    },
  },
  submitServiceCallBatch: {
    responses: {
      '200': {
        items: [
          { status: 202, id: CALL_ID, dueAt: DUE_AT, createdAt: CREATED_AT },
          {
            status: 422,
            error: {
              type: 'about:blank',
              title: 'Unprocessable Content',
              status: 422,
              detail: 'request.url: localhost is a loopback name',
              errors: [{ field: 'request.url', message: 'request.url: localhost is a loopback name' }],
            },
          },
        ],
      },
    },
  },
  getServiceCall: { responses: { '200': detailExample } },
  cancelServiceCall: { responses: { '202': cancelledExample } },
  bulkCancelServiceCalls: {
    request: { filter: { tag: 'billing', status: 'Scheduled' }, limit: 500 },
    responses: { '200': { matched: 1, affected: 1, ids: [CALL_ID] } },
  },
  bulkReplayServiceCalls: {
    request: { filter: { status: ['Failed'], createdAfter: '2030-01-01T00:00:00Z' } },
    responses: { '200': { matched: 1, affected: 1, ids: [CALL_ID] } },
  },
  replayServiceCall: {
    responses: {
      '202': { id: CALL_ID, status: 'Scheduled', dueAt: DUE_AT, createdAt: CREATED_AT, replayOf: CALL_ID },
      '200': { id: CALL_ID, status: 'Scheduled', dueAt: DUE_AT, createdAt: CREATED_AT, replayOf: CALL_ID },
    },
  },
  rescheduleServiceCall: {
    responses: { '200': { ...cancelledExample, status: 'Scheduled', dueAt: '2030-01-01T08:00:00.000Z' } },
  },
  listServiceCalls: {
    responses: {
      '200': {
        items: [summaryExample],
        nextCursor:
          'eyJ2IjoxLCJ0IjoiMjAyOS0xMi0zMVQxODowMDowMC4wMDAwMDBaIiwiaSI6IjNmNmM4YjUyLTZhMWUtNGI4ZS05ZDRmLTJhN2MxZTViOWQxMCIsImYiOiJRbVZ5aXlfR2g2Q2cifQ',
      },
    },
  },
  health: { responses: { '200': { status: 'ok' } } },
  readiness: {
    responses: {
      '200': { status: 'ready', checks: { postgres: true, temporal: true } },
      '503': { status: 'not ready', checks: { postgres: true, temporal: false } },
    },
  },
};

const DESCRIPTIONS: Record<string, string> = {
  '200': 'OK',
  '202': 'Accepted',
  '400': 'Invalid input; `errors` names each offending field or parameter',
  '401': 'Missing, unknown or revoked API key',
  '404': 'No such call for this tenant',
  '409': 'The call is no longer in a state that allows this',
  '413': 'Body larger than 1 MiB',
  '415': 'Body is not JSON',
  '422': 'Idempotency-Key reused with a different request',
  '429': "The tenant's rate limit is exhausted; retry after `Retry-After` seconds",
  '503': 'A dependency is unavailable; retry shortly',
};

const retryAfter = {
  description: 'Seconds to wait before retrying.',
  schema: { type: 'integer', minimum: 1 },
  example: 1,
};

function asRecord(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/**
 * GET /metrics answers Prometheus text, not JSON, and is registered without a schema (hidden from
 * the generator); it is described here, and only when the app really has it.
 */
const metricsPathItem = {
  get: {
    operationId: 'metrics',
    tags: ['operations'],
    summary: 'Prometheus metrics',
    description:
      'Prometheus text exposition format: request latency, projection lag, outbox backlog and the rest. Needs no key.',
    security: [],
    responses: {
      '200': {
        description: 'OK',
        content: {
          'text/plain': {
            schema: { type: 'string' },
            example:
              '# TYPE punctual_consumer_lag_seconds gauge\npunctual_consumer_lag_seconds{consumer="service-calls"} 0.012\n',
          },
        },
      },
    },
  },
};

/** Operations whose request body may be left out altogether. */
const OPTIONAL_BODY = new Set(['rotateSigningSecret']);

/**
 * Fastify answers HEAD on every GET route (exposeHeadRoutes): the same statuses and headers,
 * never a body. Described as such, from the finished GET operation.
 */
function headOperation(get: Json): Json {
  const responses: Json = {};
  for (const [status, value] of Object.entries(asRecord(get.responses) ?? {})) {
    const { content: _content, ...rest } = asRecord(value) ?? {};
    responses[status] = rest;
  }
  return {
    ...structuredClone(get),
    operationId: `${String(get.operationId)}Head`,
    summary: `${String(get.summary)} (headers only)`,
    description: `As \`GET\`, without a body: the same status and headers.`,
    responses: structuredClone(responses),
  };
}

/** Adds what the route schemas cannot carry; mutates and returns the generated document. */
function completeDocument(doc: Json, opts: { metrics?: boolean } = {}): Json {
  if (opts.metrics === true) {
    const paths = asRecord(doc.paths);
    if (paths !== undefined && paths['/metrics'] === undefined) paths['/metrics'] = structuredClone(metricsPathItem);
  }
  const paths = asRecord(doc.paths) ?? {};
  completeOperations(paths);
  for (const pathItem of Object.values(paths)) {
    const item = asRecord(pathItem);
    const get = asRecord(item?.get);
    if (item !== undefined && get !== undefined && item.head === undefined) item.head = headOperation(get);
  }
  return doc;
}

function completeOperations(paths: Json): void {
  for (const pathItem of Object.values(paths)) {
    for (const operationValue of Object.values(asRecord(pathItem) ?? {})) {
      const operation = asRecord(operationValue);
      if (operation === undefined) continue;
      const examples = EXAMPLES[String(operation.operationId)];
      const body = asRecord(asRecord(asRecord(operation.requestBody)?.content)?.['application/json']);
      const dated = DATED_REQUESTS[String(operation.operationId)];
      if (body !== undefined && (examples?.request !== undefined || dated !== undefined)) {
        body.example = dated?.() ?? examples?.request;
      }
      const requestBody = asRecord(operation.requestBody);
      if (requestBody !== undefined && OPTIONAL_BODY.has(String(operation.operationId))) requestBody.required = false;

      const responses = asRecord(operation.responses) ?? {};
      for (const [status, responseValue] of Object.entries(responses)) {
        const response = asRecord(responseValue);
        if (response === undefined) continue;
        if (response.description === 'Default Response' && DESCRIPTIONS[status] !== undefined) {
          response.description = DESCRIPTIONS[status];
        }
        const content = asRecord(response.content);
        const json = asRecord(content?.['application/json']);
        if (content !== undefined && json !== undefined && asRecord(json.schema)?.$ref === PROBLEM_REF) {
          delete content['application/json'];
          const example =
            OPERATION_PROBLEMS[String(operation.operationId)]?.[status] ?? problems[status] ?? problems['400'];
          content[PROBLEM_MEDIA] = { ...json, example };
        } else if (json !== undefined && examples?.responses[status] !== undefined) {
          json.example = examples.responses[status];
        } else if (json !== undefined && json.example === undefined) {
          // A route that keeps its example in its schema (`example`, or `examples: [...]`).
          const schema = asRecord(json.schema);
          const fromSchema =
            schema?.example ?? (Array.isArray(schema?.examples) ? (schema.examples as unknown[])[0] : undefined);
          if (fromSchema !== undefined) json.example = fromSchema;
        }
        const headers: Json = asRecord(response.headers) ?? {};
        if (status === '429' || status === '503') headers['Retry-After'] = retryAfter;
        if (operation.operationId === 'submitServiceCall' && (status === '202' || status === '200')) {
          headers.Location = {
            description: 'Where the call can be read: `/v1/service-calls/{id}`.',
            schema: { type: 'string' },
            example: `/v1/service-calls/${CALL_ID}`,
          };
        }
        if (operation.operationId === 'submitServiceCall' && status === '200') {
          headers['Idempotent-Replayed'] = {
            description: 'Present on a replay: this answer is the one given to the first submit with this key.',
            schema: { type: 'string', enum: ['true'] },
            example: 'true',
          };
        }
        if (Object.keys(headers).length > 0) response.headers = headers;
      }

      const parameters = Array.isArray(operation.parameters) ? (operation.parameters as unknown[]) : [];
      for (const parameter of parameters) {
        const p = asRecord(parameter);
        if (p?.in === 'path' && p.name === 'id' && p.example === undefined) p.example = CALL_ID;
        if (p?.in === 'query' && p.name === 'cursor') {
          const cursor = exampleCursor(parameters);
          if (cursor !== undefined) p.example = cursor;
        }
      }

      const keyed = IDEMPOTENT_OPERATIONS[String(operation.operationId)];
      if (keyed !== undefined) {
        const parameters = Array.isArray(operation.parameters) ? (operation.parameters as unknown[]) : [];
        parameters.push({
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description: keyed,
          schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7e]+$' },
          example: 'invoice-42-reminder-2030-01-01',
        });
        operation.parameters = parameters;
      }
    }
  }
}

export const openApiPlugin = fp(
  async (fastify: FastifyInstance) => {
    await fastify.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Punctual',
          version: packageVersion(),
          description:
            'Runs HTTP calls for tenants, now or at a future `dueAt`, exactly as submitted, and keeps a record of what happened. Authenticate with `Authorization: Bearer <key>`; each key belongs to one tenant and sees only its calls. Errors are `application/problem+json` (RFC 9457). On every operation: an undeclared query parameter, a NUL character (`\\u0000`) or unpaired surrogate in any string (except inside a submitted `request.body`, which is sent as given), JSON nested deeper than 64 levels or a number beyond ±1.8e308 → 400 naming the field; a known path with a method it lacks → 405 with `Allow`.',
        },
        tags: [
          { name: 'service calls', description: 'Submit, read, list and cancel calls.' },
          { name: 'operations', description: 'Health checks for load balancers and orchestrators.' },
        ],
        components: {
          securitySchemes: {
            bearer: {
              type: 'http',
              scheme: 'bearer',
              description: 'An API key made with `npm run tenants -- keys create <tenant>` (or given in API_KEYS).',
            },
          },
        },
        security: [{ bearer: [] }],
      },
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
      },
      transformObject: (documentObject) => {
        if ('openapiObject' in documentObject) {
          return completeDocument(documentObject.openapiObject, {
            metrics: fastify.hasRoute({ method: 'GET', url: '/metrics' }),
          });
        }
        return documentObject.swaggerObject;
      },
    });
    await fastify.register(swaggerUi, { routePrefix: '/docs' });
    fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger());
  },
  { name: 'punctual-openapi' },
);
