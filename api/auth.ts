import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hashApiKey, tenantForApiKey } from '../core/api-keys';
import type { Db } from '../core/db';
import { UnauthorizedError } from './problem';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every /v1 route; every query is scoped by it. */
    tenantId: string;
  }
}

/** How long a verified key is trusted without asking the database again (revocation delay). */
const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;

/**
 * Bearer-key authentication. Keys are compared by hash; verified hashes are cached briefly so
 * a request costs no extra round trip.
 */
export const authPlugin = fp(
  async (fastify: FastifyInstance, opts: { db: Db }) => {
    const cache = new Map<string, { tenantId: string; expires: number }>();
    fastify.decorateRequest('tenantId', '');
    fastify.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (match?.[1] === undefined) throw new UnauthorizedError('missing "Authorization: Bearer <key>" header');
      const hash = hashApiKey(match[1]);
      const cached = cache.get(hash);
      if (cached !== undefined && cached.expires > Date.now()) {
        request.tenantId = cached.tenantId;
        return;
      }
      const tenantId = await tenantForApiKey(opts.db, match[1]);
      if (tenantId === undefined) throw new UnauthorizedError('unknown or revoked API key');
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(hash, { tenantId, expires: Date.now() + CACHE_TTL_MS });
      request.tenantId = tenantId;
    });
  },
  { name: 'punctual-auth' },
);

declare module 'fastify' {
  interface FastifyInstance {
    authenticate(request: FastifyRequest): Promise<void>;
  }
}
