import { Webhook, WebhookVerificationError } from 'standardwebhooks';

/**
 * Checks a request Punctual sent (to a call's target, or to a callback URL) against the tenant's
 * signing secrets (`whsec_…`, as `secrets.list()` shows them): `webhook-signature` must hold a
 * signature of `webhook-id.webhook-timestamp.body` by one of them, and the timestamp must be
 * within five minutes of now. During a rotation give every secret that signs: any one suffices.
 */

/** Headers as a Fetch `Headers`, a plain record, or Node's `IncomingHttpHeaders`. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifiedWebhook {
  /** `webhook-id`: the same on every retry of one delivery, so a receiver can drop duplicates. */
  id: string;
  timestamp: Date;
  /** The body exactly as received. */
  body: string;
}

export { WebhookVerificationError };

const NAMES = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

function pick(headers: WebhookHeaders): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of NAMES) {
    let value: string | string[] | null | undefined;
    if (headers instanceof Headers) value = headers.get(name);
    else {
      const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
      value = key === undefined ? undefined : headers[key];
    }
    if (Array.isArray(value)) value = value.join(' ');
    if (typeof value === 'string') picked[name] = value;
  }
  return picked;
}

function text(rawBody: string | Uint8Array): string {
  return typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody);
}

/**
 * Throws WebhookVerificationError unless the request is signed by one of `secrets` and fresh.
 * `rawBody` must be the bytes received, before any JSON parsing: a re-serialized body differs.
 */
export function verifyWebhook(
  headers: WebhookHeaders,
  rawBody: string | Uint8Array,
  secrets: string | readonly (string | { secret: string })[],
): VerifiedWebhook {
  const list = (typeof secrets === 'string' ? [secrets] : secrets).map((s) => (typeof s === 'string' ? s : s.secret));
  if (list.length === 0) throw new WebhookVerificationError('No secret to verify with');
  const picked = pick(headers);
  const body = text(rawBody);
  let failure: unknown;
  for (const secret of list) {
    try {
      new Webhook(secret).verify(body, picked, { jsonParse: false });
      return { id: picked['webhook-id']!, timestamp: new Date(Number(picked['webhook-timestamp']) * 1000), body };
    } catch (err) {
      failure = err;
    }
  }
  throw failure instanceof WebhookVerificationError ? failure : new WebhookVerificationError(String(failure));
}
