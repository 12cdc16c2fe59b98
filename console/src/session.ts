import { Punctual, PunctualError } from '@punctual/client';

/**
 * The API key lives in sessionStorage only (never a cookie or a URL): it is gone when the tab
 * closes, and every request goes through the public /v1 API with it, so the console can do
 * nothing the key itself may not.
 */
const KEY = 'punctual.apiKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function clientFor(apiKey: string): Punctual {
  // Same origin: the console is served by the API it talks to.
  return new Punctual({ baseUrl: location.origin, apiKey, maxRetries: 2, maxRetryDelayMs: 5_000 });
}

/** Checks the key with one cheap read; stores it only when the API accepts it. */
export async function signIn(apiKey: string): Promise<Punctual> {
  const client = clientFor(apiKey);
  await client.calls.page({ limit: 1 });
  sessionStorage.setItem(KEY, apiKey);
  return client;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

/** A sentence for a person: the problem's title and detail, or what went wrong on the way. */
export function describeError(err: unknown): string {
  if (err instanceof PunctualError) {
    if (err.status === 401) return 'This API key is not valid (401): check it and sign in again.';
    const detail = err.detail === undefined || err.detail === '' ? '' : `: ${err.detail}`;
    return `${err.title} (${err.status})${detail}`;
  }
  if (err instanceof TypeError) return 'The API could not be reached. Is the service running?';
  return err instanceof Error ? err.message : String(err);
}

export function isStatus(err: unknown, ...statuses: number[]): boolean {
  return err instanceof PunctualError && statuses.includes(err.status);
}

/** The fields a 400 or 422 names (`errors[].field` of its problem), for marking the inputs. */
export function errorFields(err: unknown): string[] {
  return err instanceof PunctualError ? err.errors.map((e) => e.field) : [];
}
