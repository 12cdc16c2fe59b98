import { readFileSync } from 'node:fs';
import path from 'node:path';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { CALL_ID, PROBLEM_EXAMPLES } from './examples';
import { encodeCursor, parseListQuery } from './list-query';

/**
 * The OpenAPI 3.1 document, generated from the route schemas by @fastify/swagger and served at
 * /openapi.json, with Swagger UI at /docs (its assets ship in the package: no CDN, works offline).
 * Each route's descriptions, examples and headers sit in its own schema (api/schemas.ts says
 * how). What is added here holds for every operation alike: the problem+json media type and a
 * problem example per status, `Retry-After` on 429 and 503, a description per status, HEAD
 * beside GET, an example cursor made for the other parameters' examples, request examples due
 * tomorrow, and the `x-idempotency-key` and `x-body-optional` extensions turned into OpenAPI.
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

/** An instant a day from now, on the hour: a dueAt the API accepts today. */
function tomorrow(): string {
  const at = new Date(Date.now() + 24 * 3600 * 1000);
  at.setUTCMinutes(0, 0, 0);
  return at.toISOString().replace('.000Z', 'Z');
}

/** A request example with every `dueAt` in it moved to tomorrow: a call is due at most 366 days ahead. */
function redated(example: unknown): unknown {
  if (Array.isArray(example)) return example.map(redated);
  const record = asRecord(example);
  if (record === undefined) return example;
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [key, key === 'dueAt' ? tomorrow() : redated(value)]),
  );
}

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

const DESCRIPTIONS: Record<string, string> = {
  '200': 'OK',
  '201': 'Created',
  '202': 'Accepted',
  '204': 'No Content',
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
/** Response examples of the routes, by "operationId status", read from their schemas as they are registered. */
type RouteExamples = Map<string, unknown>;

function completeDocument(doc: Json, examples: RouteExamples, opts: { metrics?: boolean } = {}): Json {
  if (opts.metrics === true) {
    const paths = asRecord(doc.paths);
    if (paths !== undefined && paths['/metrics'] === undefined) paths['/metrics'] = structuredClone(metricsPathItem);
  }
  const paths = asRecord(doc.paths) ?? {};
  completeOperations(paths, examples);
  for (const pathItem of Object.values(paths)) {
    const item = asRecord(pathItem);
    const get = asRecord(item?.get);
    if (item !== undefined && get !== undefined && item.head === undefined) item.head = headOperation(get);
  }
  return doc;
}

function completeOperations(paths: Json, examples: RouteExamples): void {
  for (const pathItem of Object.values(paths)) {
    for (const operationValue of Object.values(asRecord(pathItem) ?? {})) {
      const operation = asRecord(operationValue);
      if (operation === undefined) continue;
      const requestBody = asRecord(operation.requestBody);
      const body = asRecord(asRecord(requestBody?.content)?.['application/json']);
      if (body?.example !== undefined) body.example = redated(body.example);
      if (operation['x-body-optional'] === true && requestBody !== undefined) requestBody.required = false;
      delete operation['x-body-optional'];

      for (const [status, responseValue] of Object.entries(asRecord(operation.responses) ?? {})) {
        const response = asRecord(responseValue);
        if (response === undefined) continue;
        if (response.description === 'Default Response' && DESCRIPTIONS[status] !== undefined) {
          response.description = DESCRIPTIONS[status];
        }
        const content = asRecord(response.content);
        const json = asRecord(content?.['application/json']);
        // The generator keeps an `examples` beside a `$ref` only when the schema is inline.
        if (json !== undefined && json.example === undefined) {
          const fromRoute = examples.get(`${String(operation.operationId)} ${status}`);
          if (fromRoute !== undefined) json.example = fromRoute;
        }
        if (content !== undefined && json !== undefined && asRecord(json.schema)?.$ref === PROBLEM_REF) {
          delete content['application/json'];
          const example = json.example ?? PROBLEM_EXAMPLES[status] ?? PROBLEM_EXAMPLES['400'];
          content[PROBLEM_MEDIA] = { ...json, example };
        }
        const headers: Json = asRecord(response.headers) ?? {};
        if (status === '429' || status === '503') headers['Retry-After'] = retryAfter;
        // A header's example sits in its schema in the route; OpenAPI wants it on the header.
        for (const header of Object.values(headers)) {
          const h = asRecord(header);
          const schema = asRecord(h?.schema);
          if (h === undefined || schema === undefined || !Array.isArray(schema.examples)) continue;
          h.schema = (({ examples: _examples, ...rest }) => rest)(schema);
          h.example ??= (schema.examples as unknown[])[0];
        }
        if (Object.keys(headers).length > 0) response.headers = headers;
      }

      const parameters = Array.isArray(operation.parameters) ? (operation.parameters as unknown[]) : [];
      for (const parameter of parameters) {
        const p = asRecord(parameter);
        if (p?.in === 'query' && p.name === 'cursor') {
          const cursor = exampleCursor(parameters);
          if (cursor !== undefined) p.example = cursor;
        }
      }

      const keyed = operation['x-idempotency-key'];
      delete operation['x-idempotency-key'];
      if (typeof keyed === 'string') {
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
    const examples: RouteExamples = new Map();
    fastify.addHook('onRoute', (route) => {
      const schema = asRecord(route.schema);
      for (const [status, response] of Object.entries(asRecord(schema?.response) ?? {})) {
        const given = asRecord(response)?.examples;
        if (Array.isArray(given) && given.length > 0)
          examples.set(`${String(schema?.operationId)} ${status}`, given[0]);
      }
    });
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
          { name: 'schedules', description: 'Recurring calls: each run is an ordinary service call.' },
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
          return completeDocument(documentObject.openapiObject, examples, {
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
