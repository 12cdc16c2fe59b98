import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { NotFoundError } from '../../core/commands';
import { workflowIdFor } from '../../core/ids';
import { inParallel } from '../../core/in-parallel';
import { flowLimitChangedSignal } from '../../workflows';
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

export interface FlowLimitApiDeps extends AppDeps {
  /** Wakes the calls waiting for a changed or deleted limit; absent (tests of the API alone): they ask again by themselves. */
  temporal?: Client;
}

/** Signals sent at once while waking waiting calls. */
const WAKE_CONCURRENCY = 16;

/**
 * Wakes the calls that waited for a limit just changed or deleted, after the answer: each asks
 * again at once (revision 5; older runs ignore the signal). Best effort: a call not reached, or an
 * api that dies first, leaves the call to ask by itself within FLOW_MAX_SLOT_WAIT_MS.
 */
function wakeWaiting(client: Client | undefined, tenantId: string, key: string, ids: string[], log: FastifyBaseLogger) {
  if (client === undefined || ids.length === 0) return;
  let failed = 0;
  void inParallel(ids, WAKE_CONCURRENCY, async (id) => {
    try {
      await client.workflow.getHandle(workflowIdFor(tenantId, id)).signal(flowLimitChangedSignal);
    } catch (err) {
      // An ended workflow has nothing to wake.
      if (!(err instanceof WorkflowNotFoundError)) {
        failed++;
        log.warn({ err, tenantId, flowKey: key, serviceCallId: id }, 'could not wake a waiting call');
      }
    }
  }).then(() => {
    log.info({ tenantId, flowKey: key, woken: ids.length - failed, failed }, 'waiting calls woken');
  });
}

export async function flowLimitRoutes(instance: FastifyInstance, deps: FlowLimitApiDeps): Promise<void> {
  const fastify = instance.withTypeProvider<TypeProvider>();

  fastify.put('/v1/flow-limits/:key', { schema: putFlowLimitRouteSchema }, async (request) => {
    const { ratePerSecond, burst, concurrency } = request.body;
    if (ratePerSecond === undefined && concurrency === undefined) {
      throw new BadRequestError('ratePerSecond', 'or concurrency must be given (a limit needs at least one)');
    }
    if (burst !== undefined && ratePerSecond === undefined) {
      throw new BadRequestError('burst', 'needs ratePerSecond (a burst is the size of a rate’s bucket)');
    }
    const { limit, waiting } = await putFlowLimit(deps.db, request.tenantId, request.params.key, {
      ratePerSecond: ratePerSecond ?? null,
      burst: ratePerSecond === undefined ? null : (burst ?? defaultBurst(ratePerSecond)),
      concurrency: concurrency ?? null,
    });
    request.log.info({ tenantId: request.tenantId, flowKey: limit.key, waiting: waiting.length }, 'flow limit defined');
    wakeWaiting(deps.temporal, request.tenantId, limit.key, waiting, request.log);
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
    const waiting = await deleteFlowLimit(deps.db, request.tenantId, request.params.key);
    if (waiting === undefined) throw notFound(request.params.key);
    request.log.info(
      { tenantId: request.tenantId, flowKey: request.params.key, waiting: waiting.length },
      'flow limit deleted',
    );
    wakeWaiting(deps.temporal, request.tenantId, request.params.key, waiting, request.log);
    return reply.code(204).send(null);
  });
}
