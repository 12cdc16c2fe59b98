import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { lazyTemporalClient, type TemporalTarget } from '../../core/temporal';
import { READINESS_TIMEOUT_MS, withinTimeout } from './reachable';

declare module 'fastify' {
  interface FastifyInstance {
    /** Whether the Temporal namespace answers within the readiness timeout. */
    temporalReachable(): Promise<boolean>;
    /** A client on the same lazy connection: the schedule routes sync and describe Temporal Schedules with it. */
    temporalClient: Client;
  }
}

/**
 * The api needs Temporal to report readiness (a submit is durable in Postgres alone) and for the
 * schedule routes' fast path: a lazy connection, made on first use and closed with the app.
 */
export const temporalPlugin = fp(
  async (fastify: FastifyInstance, target: TemporalTarget) => {
    const { connection, client } = lazyTemporalClient(target);
    fastify.decorate('temporalClient', client);
    // Closing the connection under a call still in flight throws from inside the gRPC client:
    // closing waits for the checks it started.
    const inFlight = new Set<Promise<unknown>>();
    const track = (work: Promise<unknown>) => {
      const settled = work.catch(() => undefined).finally(() => inFlight.delete(settled));
      inFlight.add(settled);
      return work;
    };
    fastify.decorate('temporalReachable', () =>
      withinTimeout(
        track(
          // The deadline also ends the client's own retries of an unreachable server.
          connection.withDeadline(Date.now() + READINESS_TIMEOUT_MS, () =>
            connection.workflowService.describeNamespace({ namespace: target.namespace }),
          ),
        ),
      ),
    );
    fastify.addHook('onClose', async () => {
      await Promise.all(inFlight);
      await connection.close();
    });
  },
  { name: 'punctual-temporal' },
);
