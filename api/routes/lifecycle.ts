import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { BULK_LIMIT_MAX, bulkCancel, bulkReplay } from '../../core/bulk';
import { replayServiceCall, rescheduleServiceCall } from '../../core/commands';
import type { ListFilter } from '../../projections/service-calls';
import { parseListQuery } from '../list-query';
import { BadRequestError } from '../problem';
import { toView } from '../../core/view';
import type { AppDeps } from '../app';
import {
  bulkCancelRouteSchema,
  bulkReplayRouteSchema,
  replayRouteSchema,
  rescheduleRouteSchema,
  type TypeProvider,
} from '../schemas';
import { callbackOf, idempotencyKeyOf, validateDueAt } from './service-calls';

/**
 * Commands on a call after its submit (issue 13): reschedule, replay, and both in bulk. Each is
 * decided by core/decider.ts on the call's stream; these handlers only validate and answer.
 */
/** A bulk body's filter, checked as the list's query is (api/list-query.ts); empty → 400. */
function bulkFilterOf(body: { filter: object; limit?: number }): ListFilter {
  const given = Object.entries(body.filter).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0));
  if (given.length === 0) {
    throw new BadRequestError(
      'filter',
      'must name at least one filter (e.g. {"status":["Failed"]}); an empty one is refused',
    );
  }
  try {
    const filter = parseListQuery(Object.fromEntries(given));
    return { ...filter, limit: body.limit ?? BULK_LIMIT_MAX };
  } catch (err) {
    if (err instanceof BadRequestError)
      throw new BadRequestError(`filter.${err.field}`, err.message.slice(err.field.length + 2));
    throw err;
  }
}

export async function lifecycleRoutes(instance: FastifyInstance, deps: AppDeps): Promise<void> {
  const fastify = instance.withTypeProvider<TypeProvider>();
  fastify.post('/v1/service-calls/:id/reschedule', { schema: rescheduleRouteSchema }, async (request) => {
    const dueAt = validateDueAt(request.body.dueAt, Date.now()) ?? request.body.dueAt;
    const state = await rescheduleServiceCall(deps, request.tenantId, request.params.id, dueAt, request.correlationId);
    request.log.info(
      { tenantId: request.tenantId, serviceCallId: state.id, dueAt: state.dueAt },
      'service call rescheduled',
    );
    return toView(state);
  });

  fastify.post(
    '/v1/service-calls/:id/replay',
    {
      schema: replayRouteSchema,
      // The body is optional: none means `{}` (due now).
      preValidation: (request, _reply, done) => {
        request.body ??= {};
        done();
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const result = await replayServiceCall(deps, {
        tenantId: request.tenantId,
        originalId: request.params.id,
        idempotencyKey: idempotencyKeyOf(request.headers['idempotency-key']),
        dueAt: validateDueAt(body.dueAt, Date.now()),
        ...(body.callback === undefined
          ? {}
          : { callback: body.callback === null ? null : callbackOf(deps, body.callback) }),
        ...(body.flowKeys === undefined ? {} : { flowKeys: [...body.flowKeys] }),
        correlationId: request.correlationId,
      });
      request.log.info(
        { tenantId: request.tenantId, serviceCallId: result.id, replayOf: result.replayOf, replayed: result.replayed },
        'service call replayed',
      );
      const { replayed, ...answer } = result;
      void reply.header('location', `/v1/service-calls/${result.id}`);
      if (replayed) return reply.code(200).header('idempotent-replayed', 'true').send(answer);
      return reply.code(202).send(answer);
    },
  );

  fastify.post('/v1/service-calls/bulk/cancel', { schema: bulkCancelRouteSchema }, async (request) => {
    const result = await bulkCancel(deps, request.tenantId, bulkFilterOf(request.body), request.correlationId);
    request.log.info(
      { tenantId: request.tenantId, matched: result.matched, affected: result.affected },
      'bulk cancel done',
    );
    return result;
  });

  fastify.post('/v1/service-calls/bulk/replay', { schema: bulkReplayRouteSchema }, async (request) => {
    const filter = bulkFilterOf(request.body);
    // Without an Idempotency-Key the body itself names the request (see bulkReplayKey).
    const requestKey =
      idempotencyKeyOf(request.headers['idempotency-key']) ??
      `body:${createHash('sha256').update(JSON.stringify(request.body)).digest('base64url')}`;
    const result = await bulkReplay(deps, request.tenantId, filter, requestKey, request.correlationId);
    request.log.info(
      { tenantId: request.tenantId, matched: result.matched, affected: result.affected },
      'bulk replay done',
    );
    return result;
  });
}
