/**
 * Redaction of sensitive header values (ADR-0008). One function, used for every place a header
 * is shown to people: API responses, the read model, logs.
 */

export const REDACTED = '[REDACTED]';

const SENSITIVE_NAMES = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
]);
const SENSITIVE_FRAGMENTS = ['token', 'secret', 'password', 'key', 'auth', 'session', 'signature'];

export function isSensitiveHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return SENSITIVE_NAMES.has(lower) || SENSITIVE_FRAGMENTS.some((f) => lower.includes(f));
}

export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = isSensitiveHeader(name) ? REDACTED : value;
  }
  return out;
}
