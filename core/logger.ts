import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Header values are never logged whole; where a request is logged, it goes
 * through redactHeaders first (pino's own redact paths are case-sensitive and would miss
 * `Authorization`). Errors go through serializeError, requests through serializeRequest: neither
 * lets a query's parameters or a request's query string into a log line.
 */
export function createLogger(level: string, name = 'punctual', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    base: { pid: process.pid },
    serializers: { err: serializeError, error: serializeError, req: serializeRequest },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** Error fields that carry the data a query or a request was about (drizzle, pg, undici). */
const DATA_FIELDS = new Set(['params', 'parameters', 'values', 'detail', 'where', 'internalQuery', 'body', 'input']);
const MAX_CAUSES = 5;

/** A PostgreSQL error (pg's DatabaseError): its message may quote the value it refused. */
function isDatabaseError(err: Error): boolean {
  const e = err as { code?: unknown; severity?: unknown };
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/**
 * What may be logged of an error's message. drizzle's DrizzleQueryError writes the parameters
 * into its message (`Failed query: …\nparams: …`): cut there. A PostgreSQL message quotes the
 * value it refused (`invalid input syntax for type uuid: "…"`): drop what is quoted; the code,
 * constraint, table and column say which it was.
 */
function safeMessage(err: Error): string {
  let message = String(err.message);
  const cut = message.indexOf('\nparams:');
  if (cut !== -1) message = message.slice(0, cut);
  if (isDatabaseError(err)) message = message.replace(/"[^"]*"/g, '"…"');
  return message;
}

function serializeOne(err: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.constructor?.name ?? err.name, message: safeMessage(err) };
  // The stack's first lines repeat the message; keep only the frames.
  const frames = typeof err.stack === 'string' ? err.stack.split('\n').filter((l) => /^\s+at /.test(l)) : [];
  out.stack = [`${err.name}: ${String(out.message)}`, ...frames].join('\n');
  for (const [key, value] of Object.entries(err)) {
    if (DATA_FIELDS.has(key) || key === 'cause' || key === 'message' || key === 'stack') continue;
    if (value instanceof Error) {
      if (depth < MAX_CAUSES) out[key] = serializeOne(value, depth + 1);
      continue;
    }
    if (typeof value === 'function') continue;
    out[key] = value;
  }
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error && depth < MAX_CAUSES) out.cause = serializeOne(cause, depth + 1);
  else if (cause !== undefined && !(cause instanceof Error)) out.cause = typeof cause === 'string' ? cause : '[cause]';
  return out;
}

/**
 * The `err` serializer of every logger: the error chain (causes included) without the fields
 * and message parts that hold query parameters or refused values, so a failed INSERT of a call
 * logs its SQL and its error code but not the call's URL, headers or sealed secrets.
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  return serializeOne(err, 0);
}

/** `/v1/…?a=b` → `/v1/…?[REDACTED]`: a key or a filter given in the query string stays out of logs. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1 || !url.startsWith('/v1')) return url;
  return `${url.slice(0, q)}?[REDACTED]`;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  ip?: string;
  host?: string;
  socket?: { remotePort?: number } | null;
}

/** Fastify's request lines (`incoming request`): method, path and peer; /v1 query strings redacted. */
export function serializeRequest(req: unknown): unknown {
  if (typeof req !== 'object' || req === null) return req;
  const r = req as LoggedRequest;
  return {
    method: r.method,
    url: typeof r.url === 'string' ? redactUrl(r.url) : undefined,
    host: r.host,
    remoteAddress: r.ip,
    remotePort: r.socket?.remotePort,
  };
}
