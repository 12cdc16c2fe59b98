import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../../core/commands';
import { defaultBurst, deleteFlowLimit, getFlowLimit, listFlowLimits, putFlowLimit } from '../../core/flow-limits';
import type { AppDeps } from '../app';
import {
  deleteFlowLimitRouteSchema,
  getFlowLimitRouteSchema,
  listFlowLimitsRouteSchema,
  putFlowLimitRouteSchema,
} from '../flow-limit-schemas';
import { BadRequestError } from '../problem';
import type { TypeProvider } from '../schemas';

/**
 * The tenant's flow limits (ADR-0018): per key, a rate (token bucket) and a concurrency, shared by
 * every worker. Calls name keys in `flowKeys`; `host:<hostname>` applies to every call to a host.
 * The schemas are in api/flow-limit-schemas.ts.
 */

const notFound = (key: string) => new NotFoundError(`flow limit ${key} not found`);

export async function flowLimitRoutes(instance: FastifyInstance, deps: AppDeps): Promise<void> {
  const fastify = instance.withTypeProvider<TypeProvider>();

  fastify.put('/v1/flow-limits/:key', { schema: putFlowLimitRouteSchema }, async (request) => {
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
  });

  fastify.get('/v1/flow-limits', { schema: listFlowLimitsRouteSchema }, async (request) => ({
    items: await listFlowLimits(deps.db, request.tenantId),
  }));

  fastify.get('/v1/flow-limits/:key', { schema: getFlowLimitRouteSchema }, async (request) => {
    const limit = await getFlowLimit(deps.db, request.tenantId, request.params.key);
    if (limit === undefined) throw notFound(request.params.key);
    return limit;
  });

  fastify.delete('/v1/flow-limits/:key', { schema: deleteFlowLimitRouteSchema }, async (request, reply) => {
    if (!(await deleteFlowLimit(deps.db, request.tenantId, request.params.key))) throw notFound(request.params.key);
    request.log.info({ tenantId: request.tenantId, flowKey: request.params.key }, 'flow limit deleted');
    return reply.code(204).send(null);
  });
}
