import type { components } from './schema';

export type Problem = components['schemas']['Problem'];
export type FieldError = NonNullable<Problem['errors']>[number];

/**
 * An answer the client does not retry (or stopped retrying), with the problem+json fields the
 * API sent. A body that is not a problem (a proxy's HTML page) still gives the status and a title.
 */
export class PunctualError extends Error {
  override readonly name = 'PunctualError';
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: FieldError[];
  /** The answer's headers (`x-correlation-id` identifies the request in the service's logs). */
  readonly headers: Headers;

  constructor(status: number, problem: Partial<Problem>, headers: Headers = new Headers()) {
    const title = problem.title ?? `HTTP ${status}`;
    super(problem.detail === undefined ? `${status} ${title}` : `${status} ${title}: ${problem.detail}`);
    this.status = status;
    this.type = problem.type ?? 'about:blank';
    this.title = title;
    this.detail = problem.detail;
    this.errors = problem.errors ?? [];
    this.headers = headers;
  }

  /** From an answer and the body openapi-fetch read from it (parsed JSON, or the raw text). */
  static fromResponse(response: Response, body: unknown): PunctualError {
    const problem = isRecord(body) ? (body as Partial<Problem>) : {};
    const detail = typeof body === 'string' && body !== '' ? { detail: body.slice(0, 500) } : {};
    return new PunctualError(
      response.status,
      { title: response.statusText || undefined, ...detail, ...problem },
      response.headers,
    );
  }
}

/** `calls.waitFor` gave up before the call reached a terminal status. */
export class PunctualTimeoutError extends Error {
  override readonly name = 'PunctualTimeoutError';
  constructor(
    readonly id: string,
    readonly lastStatus: string,
    timeoutMs: number,
  ) {
    super(`call ${id} still ${lastStatus} after ${timeoutMs} ms`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
