import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import type { EgressPolicy } from '../core/egress-policy';
import type { HttpMethod, RequestBody } from '../core/events';
import { ATTEMPT_FAILURE, type AttemptFailureKind } from '../core/http-policy';
import { createGuardedConnector, EgressRefusedError, type Lookup } from './egress';

/** What one HTTP attempt produced; never thrown, always recorded (ADR-0009). */
export interface HttpAttemptOutcome {
  startedAt: string;
  finishedAt: string;
  statusCode: number | null;
  /** Time from sending the request to receiving the response headers. */
  latencyMs: number | null;
  /** At most SNIPPET_LIMIT_BYTES of the body: UTF-8 text, or base64 when the body is not text. */
  responseSnippet: string | null;
  snippetEncoding: 'utf8' | 'base64';
  truncated: boolean;
  /** Response headers on the allowlist only. */
  responseHeaders: Record<string, string>;
  /** From Retry-After, when the answer carried one. */
  retryAfterMs: number | null;
  error: string | null;
  /** What kind of failure `error` describes when there was no answer; null when there was one. */
  failure: AttemptFailureKind | null;
}

const SNIPPET_LIMIT_BYTES = 8 * 1024;

/** Response headers worth keeping; anything else (Set-Cookie above all) is dropped. */
const RESPONSE_HEADER_ALLOWLIST = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'cache-control',
  'date',
  'etag',
  'expires',
  'last-modified',
  'location',
  'retry-after',
  'x-request-id',
  'request-id',
  'x-correlation-id',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
]);

export function createHttpDispatcher(opts: { policy: EgressPolicy; lookup?: Lookup }): Dispatcher {
  // Keep-alive pooling per origin. Redirects are never followed (undici's request does not
  // follow them unless asked), so a 3xx is recorded as the response and nothing the tenant sent
  // reaches the Location.
  return new Agent({
    keepAliveTimeout: 10_000,
    connections: 64,
    connect: createGuardedConnector({ policy: opts.policy, ...(opts.lookup ? { lookup: opts.lookup } : {}) }),
  });
}

export function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

/** The bytes to send: a string verbatim, any other JSON value serialized (as application/json). */
export function encodeBody(
  headers: Record<string, string>,
  body: RequestBody | null,
): { headers: Record<string, string>; body: string | undefined } {
  if (body === null) return { headers, body: undefined };
  if (body.kind === 'text') return { headers, body: body.text };
  return {
    headers: hasHeader(headers, 'content-type') ? headers : { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(body.json),
  };
}

/** Retry-After as milliseconds from now: delta-seconds or an HTTP date. */
function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function isTextual(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return (
    type.startsWith('text/') ||
    /^application\/([\w.-]+\+)?(json|xml)$/.test(type) ||
    ['application/javascript', 'application/x-www-form-urlencoded', 'application/problem+json'].includes(type)
  );
}

/** Text when it is text and decodes as UTF-8 (a character cut at the limit is dropped), else base64. */
function snippetOf(bytes: Buffer, contentType: string | undefined): { text: string; encoding: 'utf8' | 'base64' } {
  if (isTextual(contentType)) {
    try {
      return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true }), encoding: 'utf8' };
    } catch {
      // Labelled text but not UTF-8: show it safely below.
    }
  }
  return { text: bytes.toString('base64'), encoding: 'base64' };
}

function failureOf(err: unknown, timedOut: boolean): AttemptFailureKind {
  if (timedOut) return ATTEMPT_FAILURE.Timeout;
  const refused =
    err instanceof EgressRefusedError || (err instanceof Error && err.cause instanceof EgressRefusedError);
  return refused ? ATTEMPT_FAILURE.EgressRefused : ATTEMPT_FAILURE.Network;
}

function describeError(err: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `timeout: no complete answer within ${timeoutMs} ms`;
  if (err instanceof EgressRefusedError) return err.message;
  if (err instanceof undiciErrors.UndiciError) return `${err.code ?? err.name}: ${err.message}`;
  if (err instanceof Error) {
    if (err.cause instanceof EgressRefusedError) return err.cause.message;
    const code = (err as { code?: unknown }).code;
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${typeof code === 'string' ? `${code}: ` : ''}${err.message}${cause}`;
  }
  return String(err);
}

function pickHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined && RESPONSE_HEADER_ALLOWLIST.has(name.toLowerCase())) {
      out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return out;
}

export interface OutgoingRequest {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/**
 * Sends one request and reads at most SNIPPET_LIMIT_BYTES of the answer: the rest is never
 * buffered, the connection is dropped instead.
 */
export async function performHttpRequest(
  req: OutgoingRequest,
  opts: { timeoutMs: number; dispatcher: Dispatcher; signal?: AbortSignal },
): Promise<HttpAttemptOutcome> {
  const started = performance.now();
  const startedAt = new Date();
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), opts.timeoutMs);
  const signal = opts.signal === undefined ? timeout.signal : AbortSignal.any([timeout.signal, opts.signal]);
  let statusCode: number | null = null;
  let latencyMs: number | null = null;
  let responseHeaders: Record<string, string> = {};
  try {
    const response = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal,
      dispatcher: opts.dispatcher,
    });
    statusCode = response.statusCode;
    latencyMs = Math.round(performance.now() - started);
    responseHeaders = pickHeaders(response.headers);
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
    const snippet = snippetOf(Buffer.concat(chunks), responseHeaders['content-type']);
    return {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      statusCode,
      latencyMs,
      responseSnippet: snippet.text,
      snippetEncoding: snippet.encoding,
      truncated,
      responseHeaders,
      retryAfterMs: parseRetryAfter(responseHeaders['retry-after']),
      error: null,
      failure: null,
    };
  } catch (err) {
    return {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      statusCode,
      latencyMs,
      responseSnippet: null,
      snippetEncoding: 'utf8',
      truncated: false,
      responseHeaders,
      retryAfterMs: parseRetryAfter(responseHeaders['retry-after']),
      error: describeError(err, timeout.signal.aborted, opts.timeoutMs),
      failure: failureOf(err, timeout.signal.aborted),
    };
  } finally {
    clearTimeout(timer);
  }
}
