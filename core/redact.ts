/**
 * Redaction of sensitive header values (ADR-0008). The API decides at submit which values are
 * secret: those are sealed and the event keeps `[REDACTED]` in their place, so everything read
 * back for people (API, read model, logs, Temporal) shows the redacted form. Views redact again
 * with the default rules as a second line of defence.
 */

export const REDACTED = '[REDACTED]';

/** Header names containing any of these (case-insensitive) are secret. */
const DEFAULT_SENSITIVE_FRAGMENTS = [
  'authorization',
  'cookie',
  'api-key',
  'apikey',
  'token',
  'secret',
  'password',
  'passwd',
  'key',
  'auth',
  'session',
  'signature',
  'credential',
] as const;

export interface HeaderRedactor {
  isSensitive(name: string): boolean;
  redact(headers: Record<string, string>): Record<string, string>;
  /** Splits headers into what may be shown (secrets replaced) and the secret values by name. */
  split(headers: Record<string, string>): { visible: Record<string, string>; secret: Record<string, string> };
}

/** `extra`: more name fragments from SENSITIVE_HEADERS; the defaults always apply. */
export function createHeaderRedactor(extra: readonly string[] = []): HeaderRedactor {
  const fragments = [
    ...DEFAULT_SENSITIVE_FRAGMENTS,
    ...extra.map((f) => f.trim().toLowerCase()).filter((f) => f !== ''),
  ];
  const isSensitive = (name: string) => {
    const lower = name.toLowerCase();
    return fragments.some((f) => lower.includes(f));
  };
  const split = (headers: Record<string, string>) => {
    const visible: Record<string, string> = {};
    const secret: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (isSensitive(name)) {
        visible[name] = REDACTED;
        secret[name] = value;
      } else {
        visible[name] = value;
      }
    }
    return { visible, secret };
  };
  return { isSensitive, split, redact: (headers) => split(headers).visible };
}

const defaultRedactor = createHeaderRedactor();

export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  return defaultRedactor.redact(headers);
}
