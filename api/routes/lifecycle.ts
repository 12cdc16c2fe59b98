import type { FastifyInstance } from 'fastify';
import { rescheduleServiceCall } from '../../core/commands';
import { toView } from '../../projections/service-calls';
import type { AppDeps } from '../app';
import { rescheduleRouteSchema, type RescheduleBody } from '../schemas';
import { validateDueAt } from './service-calls';

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
}
