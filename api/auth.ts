import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import pg from 'pg';
import { API_KEYS_CHANNEL, hashApiKey, tenantForApiKey } from '../core/api-keys';
import type { RateLimit } from '../core/config';
import type { Db } from '../core/db';
import { TooManyRequestsError, UnauthorizedError } from './problem';
import { TenantRateLimiter } from './rate-limit';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook of the /v1 scope; every query is scoped by it. */
    tenantId: string;
    /** Charges the tenant's rate limit `cost` more requests' worth (a batch, by its items). */
    chargeRateLimit(cost: number): void;
  }
}

/**
 * How long a verified key is trusted without asking the database again. Revocations clear the
 * cache at once through LISTEN/NOTIFY; this bounds the delay only if a notification is lost on
 * a connection that still looks alive. While the listener is down nothing is cached.
 */
const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;
const RELISTEN_MS = 1_000;

interface AuthOptions {
  db: Db;
  /** Per-tenant limit (config.rateLimit). */
  rateLimit: RateLimit;
}

/**
 * Holds one pooled connection that LISTENs for key revocations and calls `onChange` for each,
 * and whenever it (re)connects, since a revocation may have happened while it was away.
 */
class RevocationListener {
  private client: pg.PoolClient | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly onChange: () => void,
    private readonly log: FastifyBaseLogger,
  ) {}

  get listening(): boolean {
    return this.client !== undefined;
  }

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.log.debug({ err }, 'api key revocation listener: cannot connect; retrying');
      this.retryLater();
      return;
    }
    const lost = () => this.lost(client);
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.query(`listen ${API_KEYS_CHANNEL}`);
    } catch (err) {
      this.log.debug({ err }, 'api key revocation listener: LISTEN failed; retrying');
      this.lost(client);
      return;
    }
    if (this.stopped) {
      client.release(true);
      return;
    }
    client.on('notification', () => this.onChange());
    this.client = client;
    this.onChange();
  }

  private lost(client: pg.PoolClient): void {
    client.removeAllListeners('notification');
    if (this.client === client) this.client = undefined;
    try {
      client.release(true);
    } catch {
      // Released already (error and end both fire for one loss).
      return;
    }
    this.onChange();
    this.retryLater();
  }

  private retryLater(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => void this.connect(), RELISTEN_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      client.removeAllListeners('notification');
      client.removeAllListeners('end');
      client.release(true);
    }
  }
}

/** The pg.Pool behind a drizzle handle made by openDatabase, if there is one. */
function poolOf(db: Db): pg.Pool | undefined {
  const client: unknown = (db as { $client?: unknown }).$client;
  return client instanceof pg.Pool ? client : undefined;
}

/**
 * Bearer-key authentication, then the tenant's rate limit, as an onRequest hook of the scope it
 * is registered in (api/app.ts registers it once, on the scope of every /v1 route). Keys are compared by hash; verified
 * hashes are cached while a revocation listener is connected, so a request usually costs no
 * extra round trip and a revoked key answers 401 as soon as the notification arrives.
 */
export const authPlugin = fp(
  async (fastify: FastifyInstance, opts: AuthOptions) => {
    const cache = new Map<string, { tenantId: string; expires: number }>();
    /** Bumped by every revocation, so a lookup that raced one does not cache its answer. */
    let generation = 0;
    const invalidate = () => {
      generation++;
      cache.clear();
    };
    const pool = poolOf(opts.db);
    const listener =
      pool === undefined
        ? undefined
        : new RevocationListener(pool, invalidate, fastify.log.child({ component: 'auth' }));
    listener?.start();
    fastify.addHook('onClose', async () => listener?.stop());
    const limiter = new TenantRateLimiter(opts.rateLimit);

    fastify.decorateRequest('tenantId', '');
    fastify.decorateRequest('chargeRateLimit', function (this: FastifyRequest, cost: number) {
      limiter.charge(this.tenantId, cost);
    });
    fastify.addHook('onRequest', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (match?.[1] === undefined) throw new UnauthorizedError('missing "Authorization: Bearer <key>" header');
      const hash = hashApiKey(match[1]);
      const cached = listener?.listening === true ? cache.get(hash) : undefined;
      let tenantId: string;
      if (cached !== undefined && cached.expires > Date.now()) {
        tenantId = cached.tenantId;
      } else {
        const seen = generation;
        const found = await tenantForApiKey(opts.db, match[1]);
        if (found === undefined) throw new UnauthorizedError('unknown or revoked API key');
        if (listener?.listening === true && generation === seen) {
          if (cache.size >= CACHE_MAX) cache.clear();
          cache.set(hash, { tenantId: found, expires: Date.now() + CACHE_TTL_MS });
        }
        tenantId = found;
      }
      request.tenantId = tenantId;
      const retryAfter = limiter.take(tenantId);
      if (retryAfter > 0) throw new TooManyRequestsError(retryAfter);
    });
  },
  { name: 'punctual-auth' },
);
