import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Header values are never logged whole; where a request is logged, it goes
 * through redactHeaders first (pino's own redact paths are case-sensitive and would miss
 * `Authorization`).
 */
export function createLogger(level: string, name = 'punctual'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
