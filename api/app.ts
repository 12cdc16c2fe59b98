import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Deps } from '../core/commands';
import { authPlugin } from './auth';
import { errorHandler, problem, sendProblem } from './problem';
import { serviceCallRoutes } from './routes/service-calls';
import { problemSchema, serviceCallViewSchema } from './schemas';

declare module 'fastify' {
  interface FastifyRequest {
    /** From X-Correlation-Id, else generated; echoed back and written into events. */
    correlationId: string;
  }
}

export interface AppDeps extends Deps {
  /** Whether Postgres and Temporal answer right now. */
  readiness(): Promise<{ postgres: boolean; temporal: boolean }>;
}

export const BODY_LIMIT_BYTES = 1024 * 1024;
const CORRELATION_ID = /^[\x21-\x7e]{1,128}$/;

/** The REST API as a plugin; tests register it on their own instance and use inject. */
export async function app(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  fastify.addSchema(problemSchema);
  fastify.addSchema(serviceCallViewSchema);
  fastify.setErrorHandler(errorHandler);
  // The API speaks JSON only: text/plain would otherwise be parsed and fail later as a 400.
  fastify.removeContentTypeParser('text/plain');
  fastify.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, `no route for ${request.method} ${request.url.split('?')[0]}`)),
  );

  fastify.decorateRequest('correlationId', '');
  fastify.addHook('onRequest', async (request, reply) => {
    const given = request.headers['x-correlation-id'];
    request.correlationId = typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
    void reply.header('x-correlation-id', request.correlationId);
  });

  fastify.get('/healthz', async () => ({ status: 'ok' }));
  fastify.get('/readyz', async (_request, reply) => {
    const checks = await deps.readiness();
    const ready = checks.postgres && checks.temporal;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });

  await fastify.register(authPlugin, { db: deps.db });
  await fastify.register(serviceCallRoutes, deps);
}

export function buildServer(deps: AppDeps, opts: FastifyServerOptions = {}): FastifyInstance {
  const fastify = Fastify({
    bodyLimit: BODY_LIMIT_BYTES,
    // Reject what is not in the schema instead of silently dropping it, and never coerce a
    // number into a URL: the request is run exactly as given.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    ...opts,
  });
  void fastify.register(app, deps);
  return fastify;
}
