import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from '../core/logger';

/**
 * Test-only fault injection, for the fault suite (test/faults) and nothing else.
 *
 * PUNCTUAL_FAULT_API_CRASH_AFTER_COMMIT=<p> (0 < p ≤ 1) makes an api process SIGKILL itself,
 * with probability p, right after a submit (or a batch submit) has committed and before its answer
 * is sent: the crash
 * "between commit and response" that a client survives by retrying with the same
 * Idempotency-Key. The variable is read here only, never by the configuration; unset, the api
 * has no hook at all. Harmless by design: losing an answer after a commit is exactly what the
 * idempotent submit is for.
 */
export function apiFaultInjection(env: NodeJS.ProcessEnv, log: Logger): FastifyPluginAsync | undefined {
  const raw = env.PUNCTUAL_FAULT_API_CRASH_AFTER_COMMIT;
  if (raw === undefined || raw.trim() === '') return undefined;
  const p = Number(raw);
  if (!(p > 0 && p <= 1))
    throw new Error(`PUNCTUAL_FAULT_API_CRASH_AFTER_COMMIT must be a probability in (0, 1], got "${raw}"`);
  log.warn({ probability: p }, 'FAULT INJECTION ON: this api kills itself after some submits commit (test only)');
  return fp(
    async (fastify: FastifyInstance) => {
      fastify.addHook('onSend', async (request, reply, payload) => {
        const url = request.routeOptions.url;
        const committed =
          (url === '/v1/service-calls' && reply.statusCode === 202) ||
          (url === '/v1/service-calls/batch' && reply.statusCode === 200);
        if (request.method === 'POST' && committed) {
          if (Math.random() < p) process.kill(process.pid, 'SIGKILL');
        }
        return payload;
      });
    },
    { name: 'punctual-fault-injection' },
  );
}
