import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import type { HttpRequestSpec } from '../core/events';

/** What one HTTP attempt produced; never thrown, always recorded (ADR-0009). */
export interface HttpAttemptOutcome {
  startedAt: string;
  finishedAt: string;
  statusCode: number | null;
  /** Time from sending the request to receiving the response headers. */
  latencyMs: number | null;
  responseSnippet: string | null;
  truncated: boolean;
  error: string | null;
}

export const SNIPPET_LIMIT_BYTES = 8 * 1024;

export function createHttpDispatcher(): Dispatcher {
  // Keep-alive pooling per origin; redirects are never followed (undici's request does not
  // follow them unless asked), so a 3xx is recorded as the response.
  return new Agent({ keepAliveTimeout: 10_000, connections: 64, connect: { timeout: 10_000 } });
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

export function encodeBody(spec: HttpRequestSpec): { headers: Record<string, string>; body: string | undefined } {
  if (spec.body === null) return { headers: spec.headers, body: undefined };
  if (spec.body.kind === 'text') return { headers: spec.headers, body: spec.body.text };
  const headers = hasHeader(spec.headers, 'content-type')
    ? spec.headers
    : { ...spec.headers, 'content-type': 'application/json' };
  return { headers, body: JSON.stringify(spec.body.json) };
}

function describeError(err: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `timeout: no complete answer within ${timeoutMs} ms`;
  if (err instanceof undiciErrors.UndiciError) {
    return `${err.code ?? err.name}: ${err.message}`;
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${typeof code === 'string' ? `${code}: ` : ''}${err.message}${cause}`;
  }
  return String(err);
}

/**
 * Sends one request and reads at most SNIPPET_LIMIT_BYTES of the answer: the rest is never
 * buffered, the connection is dropped instead.
 */
export async function performHttpRequest(
  spec: HttpRequestSpec,
  opts: { timeoutMs: number; dispatcher: Dispatcher; signal?: AbortSignal; extraHeaders?: Record<string, string> },
): Promise<HttpAttemptOutcome> {
  const started = performance.now();
  const startedAt = new Date();
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), opts.timeoutMs);
  const signal = opts.signal === undefined ? timeout.signal : AbortSignal.any([timeout.signal, opts.signal]);
  const { headers, body } = encodeBody(spec);
  // Our own headers never replace one the tenant set.
  const extra = Object.entries(opts.extraHeaders ?? {}).filter(([name]) => !hasHeader(headers, name));
  let statusCode: number | null = null;
  let latencyMs: number | null = null;
  try {
    const response = await request(spec.url, {
      method: spec.method,
      headers: { ...headers, ...Object.fromEntries(extra) },
      body,
      signal,
      dispatcher: opts.dispatcher,
    });
    statusCode = response.statusCode;
    latencyMs = Math.round(performance.now() - started);
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      const room = SNIPPET_LIMIT_BYTES - size;
      if (chunk.length > room) {
        chunks.push(chunk.subarray(0, room));
        truncated = true;
        break;
      }
      chunks.push(chunk);
      size += chunk.length;
    }
    if (truncated) response.body.destroy();
    return {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      statusCode,
      latencyMs,
      responseSnippet: new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(chunks)),
      truncated,
      error: null,
    };
  } catch (err) {
    return {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      statusCode,
      latencyMs,
      responseSnippet: null,
      truncated: false,
      error: describeError(err, timeout.signal.aborted, opts.timeoutMs),
    };
  } finally {
    clearTimeout(timer);
  }
}
