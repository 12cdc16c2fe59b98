import type { RetryPolicy } from './events';

/** The HTTP execution policy (ADR-0009): bounds, defaults and when to try again. */

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 1,
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maxIntervalMs: 60_000,
};

export const RETRY_BOUNDS = {
  maxAttempts: { min: 1, max: 20 },
  initialIntervalMs: { min: 100, max: 3_600_000 },
  backoffCoefficient: { min: 1, max: 10 },
  maxIntervalMs: { min: 100, max: 3_600_000 },
} as const;

export const TIMEOUT_BOUNDS = { min: 100, max: 60_000 } as const;

/** The longest a Retry-After answer can hold a call back. */
const RETRY_AFTER_MAX_MS = 15 * 60 * 1000;

export function isSuccessStatus(statusCode: number | null): boolean {
  return statusCode !== null && statusCode >= 200 && statusCode < 300;
}

/** Why an attempt got no answer, carried as a value beside its message (never parsed out of it). */
export const ATTEMPT_FAILURE = {
  /** No complete answer within the call's timeout. */
  Timeout: 'timeout',
  /** The connection failed or broke (DNS, refused, reset, TLS). */
  Network: 'network',
  /** The egress guard refused the destination when dialling it. */
  EgressRefused: 'egress-refused',
  /** The attempt could not complete at all (its workers kept dying). */
  Lost: 'lost',
} as const;
export type AttemptFailureKind = (typeof ATTEMPT_FAILURE)[keyof typeof ATTEMPT_FAILURE];

/**
 * Network errors, timeouts, 408, 429 and 5xx are worth another attempt; any other answer is the
 * target's final word, and a refused destination stays refused.
 */
export function isRetryable(statusCode: number | null, failure: AttemptFailureKind | null): boolean {
  if (statusCode === null) return failure !== ATTEMPT_FAILURE.EgressRefused;
  return statusCode === 408 || statusCode === 429 || statusCode >= 500;
}

/** Delay before the attempt after `failedAttempt` (1-based). */
export function retryDelayMs(
  policy: RetryPolicy,
  failedAttempt: number,
  statusCode: number | null,
  retryAfterMs: number | null,
): number {
  if ((statusCode === 429 || statusCode === 503) && retryAfterMs !== null) {
    return Math.min(Math.max(0, retryAfterMs), RETRY_AFTER_MAX_MS);
  }
  const backoff = policy.initialIntervalMs * policy.backoffCoefficient ** (failedAttempt - 1);
  return Math.round(Math.min(policy.maxIntervalMs, backoff));
}
