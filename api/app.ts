import { randomUUID } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { Deps } from '../core/commands';
import type { Config } from '../core/config';
import type { Keyring } from '../core/crypto';
import type { EgressPolicy } from '../core/egress-policy';
import type { Logger } from '../core/logger';
import { apiRequestDuration, registry } from '../core/metrics';
import { createHeaderRedactor } from '../core/redact';
import { authPlugin } from './auth';
import { inputGuard } from './input-guard';
import { openApiPlugin } from './openapi';
import { databasePlugin } from './plugins/database';
import { temporalPlugin } from './plugins/temporal';
import { errorHandler, problem, sendProblem } from './problem';
import { batchRoutes } from './routes/batch';
import { consoleRoutes } from './routes/console';
import { flowLimitRoutes } from './routes/flow-limits';
import { lifecycleRoutes } from './routes/lifecycle';
import { serviceCallListRoutes } from './routes/service-call-list';
import { serviceCallRoutes } from './routes/service-calls';
import { scheduleRoutes } from './routes/schedules';
import { signingSecretRoutes } from './routes/signing-secrets';
import {
  healthRouteSchema,
  problemSchema,
  readinessRouteSchema,
  serviceCallPageSchema,
  serviceCallSummarySchema,
  serviceCallViewSchema,
} from './schemas';

declare module 'fastify' {
  interface FastifyRequest {
    /** From X-Correlation-Id, else generated; echoed back and written into events. */
    correlationId: string;
  }
}

/** What the route plugins are given: the command dependencies and the api's own settings. */
export interface AppDeps extends Deps {
  /** Refuses obviously forbidden destinations at submit (422); the worker checks again at connect. */
  egress: EgressPolicy;
  /** Per-attempt timeout of a call that does not set `timeoutMs`. */
  defaultTimeoutMs: number;
  /** Where detail links point: `${temporalUiUrl}/namespaces/${namespace}/workflows/…`. */
  temporalUi?: { url: string; namespace: string };
}

/** What the app is built from: the parsed config and where things are; the app opens the rest. */
interface AppOptions {
  config: Config;
  databaseUrl: string;
  temporalAddress: string;
  keyring: Keyring;
  egress: EgressPolicy;
  log: Logger;
  /** More Prometheus text for /metrics (the in-process Temporal worker's own metrics). */
  extraMetrics?: () => Promise<string>;
}

const BODY_LIMIT_BYTES = 1024 * 1024;
const API_POOL_SIZE = 20;
const CORRELATION_ID = /^[\x21-\x7e]{1,128}$/;

/** The REST API as a plugin; tests register it on their own instance and use inject. */
export async function app(fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  // Before any route, so that every route gets them.
  const routes = collectRoutes(fastify);
  fastify.addHook('preValidation', inputGuard);
  fastify.addSchema(problemSchema);
  fastify.addSchema(serviceCallViewSchema);
  fastify.addSchema(serviceCallSummarySchema);
  fastify.addSchema(serviceCallPageSchema);
  // Before any route, so that every route below lands in the OpenAPI document.
  await fastify.register(openApiPlugin);
  // A path no route has, or a known path with a method it lacks. Errors on the way there (a
  // QUERY without Content-Type fails in the body parser before the not-found handler) end here too.
  const unrouted = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = routes.methodsFor(path);
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '));
      return sendProblem(
        reply,
        problem(405, `${request.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`),
      );
    }
    return sendProblem(reply, problem(404, `no route for ${request.method} ${path}`));
  };
  fastify.setErrorHandler((error: FastifyError, request, reply) =>
    request.is404 ? unrouted(request, reply) : errorHandler(error, request, reply),
  );
  // The API speaks JSON only: text/plain would otherwise be parsed and fail later as a 400.
  fastify.removeContentTypeParser('text/plain');
  fastify.setNotFoundHandler(unrouted);

  // The request id is the correlation id (see buildServer), so every log line of a request,
  // fastify's own included, carries it as `correlationId`.
  fastify.decorateRequest('correlationId', '');
  fastify.addHook('onRequest', async (request, reply) => {
    request.correlationId = request.id;
    void reply.header('x-correlation-id', request.correlationId);
    // GET /v1/service-calls/batch reaches GET /v1/service-calls/:id with id "batch": the path is
    // the batch resource, which has no GET, so it is a 405 like any other missing method.
    const url = request.routeOptions.url;
    if (url !== undefined && url.includes(':')) {
      const path = request.url.split('?')[0] ?? '';
      if (!routes.methodsFor(path).includes(request.method)) return unrouted(request, reply);
    }
  });
  fastify.addHook('onResponse', async (request, reply) => {
    apiRequestDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: `${Math.floor(reply.statusCode / 100)}xx`,
      },
      reply.elapsedTime / 1000,
    );
  });
  const { config } = opts;
  await fastify.register(databasePlugin, {
    url: opts.databaseUrl,
    max: API_POOL_SIZE,
    applicationName: 'punctual-api',
  });
  await fastify.register(temporalPlugin, { address: opts.temporalAddress, namespace: config.temporalNamespace });

  await fastify.register(consoleRoutes);
  fastify.get('/healthz', { schema: healthRouteSchema }, async () => ({ status: 'ok' }));
  fastify.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const own = await registry.metrics();
    const extra = opts.extraMetrics === undefined ? '' : await opts.extraMetrics().catch(() => '');
    return reply.type(registry.contentType).send(`${own}\n${extra}`);
  });
  fastify.get('/readyz', { schema: readinessRouteSchema }, async (_request, reply) => {
    const [postgres, temporal] = await Promise.all([fastify.postgresReachable(), fastify.temporalReachable()]);
    const checks = { postgres, temporal };
    const ready = postgres && temporal;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });

  const deps: AppDeps = {
    db: fastify.database.db,
    notifier: fastify.notifier,
    keyring: opts.keyring,
    redactor: createHeaderRedactor(config.sensitiveHeaders),
    log: opts.log,
    egress: opts.egress,
    defaultTimeoutMs: config.httpTimeoutMs,
    ...(config.temporalUiUrl === undefined
      ? {}
      : { temporalUi: { url: config.temporalUiUrl, namespace: config.temporalNamespace } }),
  };
  // The /v1 scope: authentication is registered once here, so every route below, and every
  // route added later, answers 401 without a valid key.
  await fastify.register(async function v1(scope) {
    await scope.register(authPlugin, { db: deps.db, rateLimit: config.rateLimit });
    await scope.register(serviceCallRoutes, deps);
    await scope.register(batchRoutes, deps);
    await scope.register(signingSecretRoutes, deps);
    await scope.register(serviceCallListRoutes, deps);
    await scope.register(lifecycleRoutes, deps);
    await scope.register(scheduleRoutes, {
      ...deps,
      schedulesPerTenant: config.schedulesPerTenant,
      scheduleTarget: { client: fastify.temporalClient, taskQueue: config.temporalTaskQueue },
    });
    await scope.register(flowLimitRoutes, { ...deps, temporal: fastify.temporalClient });
  });
}

/**
 * Every route's path pattern and methods, so that a known path asked with a method it lacks
 * answers 405 with `Allow` rather than 404.
 */
function collectRoutes(fastify: FastifyInstance): { methodsFor(path: string): string[] } {
  const patterns: { pattern: RegExp; methods: string[]; fixed: boolean }[] = [];
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const source = route.url
      .split('/')
      .map((part) =>
        part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('/');
    patterns.push({ pattern: new RegExp(`^${source}$`), methods, fixed: !/[:*]/.test(route.url) });
  });
  return {
    methodsFor(path) {
      // A path a route names exactly (/v1/service-calls/batch) is that resource, not an id of the
      // parametric one beside it (/v1/service-calls/:id): only the exact routes say what it allows.
      const matching = patterns.filter((route) => route.pattern.test(path));
      const exact = matching.filter((route) => route.fixed);
      const methods = new Set<string>();
      for (const route of exact.length > 0 ? exact : matching) for (const m of route.methods) methods.add(m);
      // exposeHeadRoutes: every GET route also answers HEAD.
      if (methods.has('GET')) methods.add('HEAD');
      return [...methods].sort();
    },
  };
}

/**
 * A Fastify instance with the app registered. `before` are plugins registered ahead of the app,
 * at the root (bin/ adds the fault suite's hook this way; production passes none).
 */
export function buildServer(
  options: AppOptions,
  serverOpts: FastifyServerOptions = {},
  before: FastifyPluginAsync[] = [],
): FastifyInstance {
  const fastify = Fastify({
    bodyLimit: BODY_LIMIT_BYTES,
    // A flow-limit key is up to 128 characters (fastify's default allows 100 in a path
    // parameter); longer answers the route's 400 for its pattern, not fastify's bare 414.
    routerOptions: { maxParamLength: 512 },
    // Reject what is not in the schema instead of silently dropping it, and never coerce a
    // number into a URL: the request is run exactly as given.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'correlationId' }),
    genReqId: (req) => {
      const given = req.headers['x-correlation-id'];
      return typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
    },
    ...serverOpts,
  });
  // Every /v1 route sits in the app's authenticated scope: one registered anywhere else would
  // answer without a key, so it stops the app from starting instead.
  fastify.addHook('onRoute', function (route) {
    if (route.url.startsWith('/v1') && !this.hasRequestDecorator('tenantId')) {
      throw new Error(`${route.url} is registered outside the authenticated /v1 scope (api/app.ts)`);
    }
  });
  for (const plugin of before) void fastify.register(plugin);
  void fastify.register(app, options);
  return fastify;
}
