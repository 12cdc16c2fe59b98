/**
 * The fetch the typed layer is given: it sends a request again after a 503 or a 429, waiting
 * as long as `Retry-After` says (seconds or an HTTP date, capped), or a short backoff when it
 * says nothing, at most `maxRetries` times. Every attempt sends a clone of the one Request, so
 * a submit's `Idempotency-Key` is the same on each: a retry after a lost answer is one call.
 */

export interface RetryOptions {
  maxRetries: number;
  /** The longest wait between two attempts, whatever Retry-After asks. */
  maxDelayMs: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const RETRIED = new Set([429, 503]);
const BASE_BACKOFF_MS = 250;

/** Milliseconds a Retry-After value asks for; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function retryingFetch(
  fetchImpl: (input: Request, init?: RequestInit) => Promise<Response>,
  options: RetryOptions,
): (input: Request, init?: RequestInit) => Promise<Response> {
  const wait = options.sleep ?? sleep;
  return async (request, init) => {
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= options.maxRetries;
      const response = await fetchImpl(last ? request : request.clone(), init);
      if (last || !RETRIED.has(response.status)) return response;
      const asked = retryAfterMs(response.headers.get('retry-after'));
      const delay = Math.min(asked ?? BASE_BACKOFF_MS * 2 ** attempt, options.maxDelayMs);
      // The answer is dropped: free its connection instead of leaving the body unread.
      await response.body?.cancel().catch(() => undefined);
      await wait(delay, request.signal);
    }
  };
}
