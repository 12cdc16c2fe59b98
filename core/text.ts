/**
 * Text PostgreSQL can store. `text` and `jsonb` refuse a NUL character (U+0000) and a UTF-16
 * surrogate half without its partner (JSON's `"\ud800"` parses into one); either would fail the
 * query, so client text is checked for them where it enters (the API's input guard, the tenants
 * command) and refused there, naming the field.
 */

// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why `value` cannot be stored as text, or undefined when it can. */
export function unstorableText(value: string): string | undefined {
  const m = UNSTORABLE.exec(value);
  if (m === null) return undefined;
  return m[0] === '\u0000'
    ? 'must not contain a NUL character (\\u0000)'
    : 'must be valid Unicode (it holds a lone surrogate such as \\ud800)';
}
