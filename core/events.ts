/**
 * Events of the ServiceCall aggregate (ADR-0003): a discriminated union on `type`, past tense.
 * Event data is stored as JSON in the event store; every field is JSON-safe.
 */

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The body as the tenant gave it: a string is sent verbatim, any other JSON value serialized. */
export type RequestBody = { kind: 'text'; text: string } | { kind: 'json'; json: unknown };

export interface HttpRequestSpec {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  body: RequestBody | null;
}

export interface AttemptRecord {
  attempt: number;
  startedAt: string;
  finishedAt: string;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
}

export interface CallResult {
  outcome: 'Succeeded' | 'Failed';
  statusCode: number | null;
  latencyMs: number | null;
  responseSnippet: string | null;
  truncated: boolean;
  error: string | null;
}

export interface ServiceCallSubmittedData {
  request: HttpRequestSpec;
  dueAt: string;
  tags: string[];
  idempotencyKey: string | null;
}

export interface DueTimeReachedData {
  reachedAt: string;
}

export interface ServiceCallFinishedData {
  attempt: AttemptRecord;
  result: CallResult;
}

export interface ServiceCallCancelledData {
  /** Who asked: the REST API, or a cancellation requested on the workflow itself. */
  source: 'api' | 'workflow';
}

export const AGGREGATE_TYPE = 'ServiceCall';
export const SCHEMA_VERSION = 1;

interface Envelope<TType extends string, TData> {
  messageId: string;
  tenantId: string;
  aggregateType: typeof AGGREGATE_TYPE;
  aggregateId: string;
  type: TType;
  version: number;
  timestamp: string;
  correlationId: string;
  causationId: string | null;
  schemaVersion: number;
  data: TData;
}

export type ServiceCallSubmitted = Envelope<'ServiceCallSubmitted', ServiceCallSubmittedData>;
export type DueTimeReached = Envelope<'DueTimeReached', DueTimeReachedData>;
export type ServiceCallSucceeded = Envelope<'ServiceCallSucceeded', ServiceCallFinishedData>;
export type ServiceCallFailed = Envelope<'ServiceCallFailed', ServiceCallFinishedData>;
export type ServiceCallCancelled = Envelope<'ServiceCallCancelled', ServiceCallCancelledData>;

export type ServiceCallEvent =
  | ServiceCallSubmitted
  | DueTimeReached
  | ServiceCallSucceeded
  | ServiceCallFailed
  | ServiceCallCancelled;

export type ServiceCallEventType = ServiceCallEvent['type'];

/** An event before the store gives it a version; the stream decides that. */
export type NewEvent = {
  [E in ServiceCallEvent as E['type']]: Omit<E, 'version'>;
}[ServiceCallEventType];

/** An event as read back from the store, with its place in the global log. */
export type StoredEvent = ServiceCallEvent & { globalPosition: number; tx: string };
