/**
 * Events of the ServiceCall aggregate (ADR-0003): a discriminated union on `type`, past tense.
 * Event data is stored as JSON in the event store; every field is JSON-safe.
 */

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The body as the tenant gave it: a string is sent verbatim, any other JSON value serialized. */
export type RequestBody = { kind: 'text'; text: string } | { kind: 'json'; json: unknown };

/** The request as people may see it: secret header values are `[REDACTED]`, no body. */
export interface RequestSummary {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
}

/** The request exactly as it will be sent. Exists in memory only; at rest it is split and sealed. */
export interface HttpRequestSpec extends RequestSummary {
  body: RequestBody | null;
}

/** What is sealed at rest: the secret header values (by header name) and the body. */
export interface RequestSecrets {
  headers: Record<string, string>;
  body: RequestBody | null;
}

export interface SealedValue {
  kid: string;
  data: string;
}

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  maxAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maxIntervalMs: number;
}

export interface AttemptRecord {
  attempt: number;
  startedAt: string;
  finishedAt: string;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
  /** At most 8 KiB of the response body, as text or base64 (snippetEncoding). */
  responseSnippet: string | null;
  snippetEncoding: 'utf8' | 'base64';
  truncated: boolean;
  /** Response headers on the allowlist. */
  responseHeaders: Record<string, string>;
  /**
   * How long flow limits held this attempt back after it was due (ADR-0018): absent on calls
   * no limit applied to.
   */
  throttledMs?: number;
}

export interface CallResult {
  outcome: 'Succeeded' | 'Failed';
  statusCode: number | null;
  latencyMs: number | null;
  responseSnippet: string | null;
  snippetEncoding: 'utf8' | 'base64';
  truncated: boolean;
  responseHeaders: Record<string, string>;
  error: string | null;
}

/** The outcomes a callback can be asked for. */
export const CALLBACK_OUTCOMES = ['Succeeded', 'Failed', 'Cancelled'] as const;
export type CallbackOutcome = (typeof CALLBACK_OUTCOMES)[number];

/** Where and when to tell the tenant that the call ended (ADR-0016). */
export interface CallbackSpec {
  url: string;
  on: CallbackOutcome[];
}

/** One delivery attempt of a callback. */
export interface CallbackAttemptRecord {
  attempt: number;
  at: string;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
}

export interface ServiceCallSubmittedData {
  request: RequestSummary;
  /** RequestSecrets sealed with ENCRYPTION_KEY (ADR-0008); null when there is nothing secret. */
  secrets: SealedValue | null;
  dueAt: string;
  tags: string[];
  idempotencyKey: string | null;
  retry: RetryPolicy;
  /** Timeout of each HTTP attempt. */
  timeoutMs: number;
  /** The finished call this one replays (absent on calls submitted directly). */
  replayOf?: string;
  /** Absent on calls without a callback (and on every call submitted before callbacks existed). */
  callback?: CallbackSpec;
  /** The schedule this call is a run of, and the instant it was scheduled for (ADR-0017). */
  schedule?: ScheduleRunRef;
  /** Keys whose flow limits the call's attempts obey (ADR-0018); absent on calls without. */
  flowKeys?: string[];
}

export interface ScheduleRunRef {
  id: string;
  scheduledAt: string;
}

export interface DueTimeReachedData {
  reachedAt: string;
}

export interface AttemptFailedData {
  attempt: AttemptRecord;
  /** When the next attempt is due. */
  retryAt: string;
}

export interface ServiceCallFinishedData {
  attempt: AttemptRecord;
  result: CallResult;
}

export interface ServiceCallCancelledData {
  /** Who asked: the REST API, or a cancellation requested on the workflow itself. */
  source: 'api' | 'workflow';
}

export interface ServiceCallRescheduledData {
  previousDueAt: string;
  dueAt: string;
}

export interface CallbackAttemptData {
  attempt: CallbackAttemptRecord;
}

export const AGGREGATE_TYPE = 'ServiceCall';
export const SCHEMA_VERSION = 1;

/** The envelope of every event of every aggregate (ADR-0003); the store is generic over it. */
export interface EventEnvelope<TAggregate extends string, TType extends string, TData> {
  messageId: string;
  tenantId: string;
  aggregateType: TAggregate;
  aggregateId: string;
  type: TType;
  version: number;
  timestamp: string;
  correlationId: string;
  causationId: string | null;
  schemaVersion: number;
  data: TData;
}

type Envelope<TType extends string, TData> = EventEnvelope<typeof AGGREGATE_TYPE, TType, TData>;

/** An event of any aggregate, as the event store sees it. */
export type AnyEvent = EventEnvelope<string, string, unknown>;
/** An event before the store gives it a version (distributes over a union of events). */
export type Unversioned<E extends AnyEvent> = E extends unknown ? Omit<E, 'version'> : never;
/** An event as read back from the store, with its place in the global log. */
export type Stored<E extends AnyEvent> = E & { globalPosition: number; tx: string };

export type ServiceCallSubmitted = Envelope<'ServiceCallSubmitted', ServiceCallSubmittedData>;
export type DueTimeReached = Envelope<'DueTimeReached', DueTimeReachedData>;
export type AttemptFailed = Envelope<'AttemptFailed', AttemptFailedData>;
export type ServiceCallSucceeded = Envelope<'ServiceCallSucceeded', ServiceCallFinishedData>;
export type ServiceCallFailed = Envelope<'ServiceCallFailed', ServiceCallFinishedData>;
export type ServiceCallCancelled = Envelope<'ServiceCallCancelled', ServiceCallCancelledData>;
export type ServiceCallRescheduled = Envelope<'ServiceCallRescheduled', ServiceCallRescheduledData>;
/** A delivery attempt of the callback that did not get a 2xx; another follows. */
export type CallbackAttemptFailed = Envelope<'CallbackAttemptFailed', CallbackAttemptData>;
/** The callback got a 2xx answer. */
export type CallbackDelivered = Envelope<'CallbackDelivered', CallbackAttemptData>;
/** The callback's last allowed attempt did not get a 2xx: no more are made. */
export type CallbackFailed = Envelope<'CallbackFailed', CallbackAttemptData>;

export type ServiceCallEvent =
  | ServiceCallSubmitted
  | DueTimeReached
  | AttemptFailed
  | ServiceCallSucceeded
  | ServiceCallFailed
  | ServiceCallCancelled
  | ServiceCallRescheduled
  | CallbackAttemptFailed
  | CallbackDelivered
  | CallbackFailed;

export type ServiceCallEventType = ServiceCallEvent['type'];

/** An event before the store gives it a version; the stream decides that. */
export type NewEvent = Unversioned<ServiceCallEvent>;

/** What a decision produces: an event's type and data, before its envelope. */
export type EventBody = {
  [E in ServiceCallEvent as E['type']]: Pick<E, 'type' | 'data'>;
}[ServiceCallEventType];

/** A ServiceCall event as read back from the store. */
export type StoredEvent = Stored<ServiceCallEvent>;
