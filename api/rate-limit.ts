import type { RateLimit } from '../core/config';

/**
 * Per-tenant token buckets, in this process's memory: every api replica limits on its own, so
 * N replicas behind a balancer allow up to N times the configured rate. That is the price of
 * costing no round trip; a shared limit would need Postgres or Redis on every request.
 */
export class TenantRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get enabled(): boolean {
    return this.limit.perSecond > 0;
  }

  /**
   * Takes one token from the tenant's bucket. Returns 0 when the request may go ahead,
   * otherwise the whole seconds until a token will be there (the Retry-After value).
   */
  take(tenantId: string): number {
    if (!this.enabled) return 0;
    const now = this.now();
    const { perSecond, burst } = this.limit;
    const bucket = this.buckets.get(tenantId);
    const tokens =
      bucket === undefined ? burst : Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    if (tokens >= 1) {
      this.set(tenantId, tokens - 1, now);
      return 0;
    }
    this.set(tenantId, tokens, now);
    return Math.max(1, Math.ceil((1 - tokens) / perSecond));
  }

  /**
   * Takes `cost` more tokens from a request that was already let through (a batch pays for its
   * items beyond the first): the bucket may go below zero, and the tenant's next requests wait
   * until it has refilled to one token.
   */
  charge(tenantId: string, cost: number): void {
    if (!this.enabled || cost <= 0) return;
    const now = this.now();
    const { perSecond, burst } = this.limit;
    const bucket = this.buckets.get(tenantId);
    const tokens =
      bucket === undefined ? burst : Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    this.set(tenantId, tokens - cost, now);
  }

  private set(tenantId: string, tokens: number, at: number): void {
    if (this.buckets.size >= 100_000 && !this.buckets.has(tenantId)) this.prune(at);
    this.buckets.set(tenantId, { tokens, at });
  }

  /** Forgets buckets that have refilled: a missing bucket counts as full, so nothing changes. */
  private prune(now: number): void {
    const { perSecond, burst } = this.limit;
    for (const [tenantId, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) this.buckets.delete(tenantId);
    }
  }
}
