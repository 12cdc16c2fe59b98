import type { FastifyInstance } from 'fastify';
import { replayServiceCall, rescheduleServiceCall } from '../../core/commands';
import { toView } from '../../projections/service-calls';
import type { AppDeps } from '../app';
import { replayRouteSchema, rescheduleRouteSchema, type ReplayBody, type RescheduleBody } from '../schemas';
import { idempotencyKeyOf, validateDueAt } from './service-calls';

/**
 * Commands on a call after its submit (issue 13): reschedule, replay, and both in bulk. Each is
 * decided by core/decider.ts on the call's stream; these handlers only validate and answer.
 */
export async function lifecycleRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  fastify.addHook('onRequest', (request) => fastify.authenticate(request));

  fastify.post<{ Params: { id: string }; Body: RescheduleBody }>(
    '/v1/service-calls/:id/reschedule',
    { schema: rescheduleRouteSchema },
    async (request) => {
      const dueAt = validateDueAt(request.body.dueAt, Date.now()) ?? request.body.dueAt;
      const state = await rescheduleServiceCall(
        deps,
        request.tenantId,
        request.params.id,
        dueAt,
        request.correlationId,
      );
      request.log.info(
        { tenantId: request.tenantId, serviceCallId: state.id, dueAt: state.dueAt },
        'service call rescheduled',
      );
      return toView(state);
    },
  );

  fastify.post<{ Params: { id: string }; Body: ReplayBody | undefined }>(
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
}
