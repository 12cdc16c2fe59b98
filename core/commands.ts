import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { idempotencyKeys } from '../drizzle/schema';
import type { Db, DbOrTx } from './db';
import {
  AGGREGATE_TYPE,
  SCHEMA_VERSION,
  type HttpRequestSpec,
  type NewEvent,
  type RequestSecrets,
  type RetryPolicy,
  type ServiceCallCancelled,
  type ServiceCallSubmitted,
  type StoredEvent,
} from './events';
import { appendToStream, ConcurrencyError, readStream, type AppendNotifier } from './event-store';
import type { Keyring } from './crypto';
import { serviceCallIdFor, streamIdFor } from './ids';
import type { Logger } from './logger';
import { callsFinished, eventsAppended } from './metrics';
import type { HeaderRedactor } from './redact';
import { evolve, fold, type ServiceCallState } from './service-call';

/** Command handlers: read the stream, decide, append with the version read (ADR-0002). */

export class IdempotencyKeyReusedError extends Error {
  override name = 'IdempotencyKeyReusedError';
  constructor(readonly idempotencyKey: string) {
    super('this Idempotency-Key was already used with a different request');
  }
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

export class StateConflictError extends Error {
  override name = 'StateConflictError';
  constructor(
    message: string,
    readonly state: ServiceCallState,
  ) {
    super(message);
  }
}

export interface SubmitCommand {
  tenantId: string;
  idempotencyKey: string | undefined;
  request: HttpRequestSpec;
  /** As requested; absent or past means now. */
  dueAt: string | undefined;
  tags: string[];
  retry: RetryPolicy;
  timeoutMs: number;
  correlationId: string;
}

export interface SubmitResult {
  replayed: boolean;
  id: string;
  status: 'Scheduled';
  dueAt: string;
  createdAt: string;
}

export interface Deps {
  db: Db;
  notifier: AppendNotifier;
  /** Seals request secrets at rest and keys idempotency fingerprints. */
  keyring: Keyring;
  redactor: HeaderRedactor;
  /** Logs every append with the call's ids (ADR-0010). */
  log?: Logger;
  now?: () => Date;
}

function logAppended(deps: Deps, events: readonly NewEvent[]): void {
  for (const e of events) {
    eventsAppended.inc({ type: e.type });
    deps.log?.info(
      {
        tenantId: e.tenantId,
        serviceCallId: e.aggregateId,
        eventType: e.type,
        messageId: e.messageId,
        correlationId: e.correlationId,
        causationId: e.causationId,
      },
      'event appended',
    );
  }
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The fields of a submit that do not change what it asks for: the idempotency record's own key
 * (tenant, Idempotency-Key) and tracing. Every other field, a new one included, is fingerprinted.
 */
export const UNFINGERPRINTED_FIELDS = [
  'tenantId',
  'idempotencyKey',
  'correlationId',
] as const satisfies readonly (keyof SubmitCommand)[];

/**
 * Same request ⇔ same fingerprint: key order and equal instants written differently don't
 * matter. Keyed (HMAC), because the request holds secrets a plain digest would let one guess.
 * The bytes hashed for today's fields are those stored idempotency records were made with
 * (test/core/commands.unit.test.ts pins them).
 */
export function fingerprintOf(cmd: SubmitCommand, keyring: Keyring): string {
  const meaning: Record<string, unknown> = { ...cmd };
  for (const field of UNFINGERPRINTED_FIELDS) delete meaning[field];
  meaning.dueAt = cmd.dueAt === undefined ? null : new Date(cmd.dueAt).getTime();
  return keyring.mac(canonicalJson(meaning));
}

function submitResultOf(event: StoredEvent, replayed: boolean): SubmitResult {
  if (event.type !== 'ServiceCallSubmitted') {
    throw new Error(`stream ${event.tenantId}/${event.aggregateId} does not start with a submit`);
  }
  return {
    replayed,
    id: event.aggregateId,
    status: 'Scheduled',
    dueAt: event.data.dueAt,
    createdAt: event.timestamp,
  };
}

/**
 * Records a new call: the idempotency row and ServiceCallSubmitted commit together, so the call
 * is durable from the moment the API answers, whatever Temporal is doing. The relay starts its
 * workflow from the event.
 */
export async function submitServiceCall(deps: Deps, cmd: SubmitCommand): Promise<SubmitResult> {
  const now = (deps.now ?? (() => new Date()))();
  const id = serviceCallIdFor(cmd.tenantId, cmd.idempotencyKey);
  const streamId = streamIdFor(cmd.tenantId, id);
  const requestedDue = cmd.dueAt === undefined ? undefined : new Date(cmd.dueAt);
  const dueAt = requestedDue !== undefined && requestedDue > now ? requestedDue : now;
  const { visible, secret } = deps.redactor.split(cmd.request.headers);
  const secrets: RequestSecrets = { headers: secret, body: cmd.request.body };
  const hasSecrets = Object.keys(secret).length > 0 || cmd.request.body !== null;
  const event: Omit<ServiceCallSubmitted, 'version'> = {
    messageId: randomUUID(),
    tenantId: cmd.tenantId,
    aggregateType: AGGREGATE_TYPE,
    aggregateId: id,
    type: 'ServiceCallSubmitted',
    timestamp: now.toISOString(),
    correlationId: cmd.correlationId,
    causationId: null,
    schemaVersion: SCHEMA_VERSION,
    data: {
      request: { method: cmd.request.method, url: cmd.request.url, headers: visible },
      secrets: hasSecrets ? deps.keyring.seal(secrets, streamId) : null,
      dueAt: dueAt.toISOString(),
      tags: cmd.tags,
      idempotencyKey: cmd.idempotencyKey ?? null,
      retry: cmd.retry,
      timeoutMs: cmd.timeoutMs,
    },
  };
  const append = async (db: DbOrTx): Promise<SubmitResult> => {
    const [stored] = await appendToStream(db, streamId, 0, [event]);
    if (stored === undefined) throw new Error('append returned no event');
    return submitResultOf(stored, false);
  };
  const idempotencyKey = cmd.idempotencyKey;
  // Without a key the append is one statement, atomic by itself: no BEGIN and COMMIT round trips.
  const result =
    idempotencyKey === undefined
      ? await append(deps.db)
      : await deps.db.transaction(async (tx) => {
          const fingerprint = fingerprintOf(cmd, deps.keyring);
          // A concurrent submit with the same key waits here on the unique index until the first
          // commits, then sees its row: exactly one of them writes the event.
          const inserted = await tx
            .insert(idempotencyKeys)
            .values({ tenantId: cmd.tenantId, key: idempotencyKey, serviceCallId: id, fingerprint })
            .onConflictDoNothing()
            .returning({ id: idempotencyKeys.serviceCallId });
          if (inserted.length === 0) {
            const [existing] = await tx
              .select()
              .from(idempotencyKeys)
              .where(and(eq(idempotencyKeys.tenantId, cmd.tenantId), eq(idempotencyKeys.key, idempotencyKey)));
            if (existing === undefined) throw new Error('idempotency row vanished during submit');
            if (existing.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError(idempotencyKey);
            const [first] = await readStream(tx, streamIdFor(cmd.tenantId, existing.serviceCallId));
            if (first === undefined) throw new Error(`call ${existing.serviceCallId} has no events`);
            return submitResultOf(first, true);
          }
          return append(tx);
        });
  if (!result.replayed) {
    deps.notifier.poke();
    logAppended(deps, [event]);
  }
  return result;
}

export interface Decision<R> {
  events: NewEvent[];
  result: R;
}

export interface CommandOptions {
  /**
   * The stream as the caller last read it, to decide on without reading it again. A stale one
   * costs a retry, never a wrong write: the append's version check refuses it and the stream is
   * read afresh. Events are only ever added, so a decision to do nothing stays right.
   */
  known?: readonly StoredEvent[];
  /** Called after a successful append with the stream as it now is. */
  onAppended?: (history: StoredEvent[]) => void;
}

/**
 * Runs `decide` against the current state of a call and appends what it returns, re-reading
 * and deciding again when another writer got there first.
 */
export async function handleCommand<R>(
  deps: Deps,
  tenantId: string,
  serviceCallId: string,
  decide: (state: ServiceCallState | undefined, history: StoredEvent[]) => Decision<R>,
  opts: CommandOptions = {},
): Promise<R> {
  const streamId = streamIdFor(tenantId, serviceCallId);
  for (let round = 1; ; round++) {
    const history = round === 1 && opts.known !== undefined ? [...opts.known] : await readStream(deps.db, streamId);
    const state = fold(history);
    const { events, result } = decide(state, history);
    if (events.length === 0) return result;
    try {
      const stored = await appendToStream(deps.db, streamId, state?.version ?? 0, events);
      deps.notifier.poke();
      logAppended(deps, events);
      opts.onAppended?.([...history, ...stored]);
      return result;
    } catch (err) {
      if (!(err instanceof ConcurrencyError) || round >= 10) throw err;
    }
  }
}

/** The request exactly as submitted: the stored summary with its sealed secrets put back. */
export function requestFromSubmitted(
  data: ServiceCallSubmitted['data'],
  streamId: string,
  keyring: Keyring,
): HttpRequestSpec {
  if (data.secrets === null) return { ...data.request, body: null };
  const secrets = keyring.open<RequestSecrets>(data.secrets, streamId);
  return { ...data.request, headers: { ...data.request.headers, ...secrets.headers }, body: secrets.body };
}

/** Envelope of an event that follows `history`: same correlation, caused by the last event. */
export function nextEventEnvelope(
  state: ServiceCallState,
  history: readonly StoredEvent[],
  messageId: string,
  now: Date,
): Omit<NewEvent, 'type' | 'data'> {
  const last = history[history.length - 1];
  return {
    messageId,
    tenantId: state.tenantId,
    aggregateType: AGGREGATE_TYPE,
    aggregateId: state.id,
    timestamp: now.toISOString(),
    correlationId: history[0]?.correlationId ?? messageId,
    causationId: last?.messageId ?? null,
    schemaVersion: SCHEMA_VERSION,
  };
}

/** The API's cancel: only a Scheduled call can be cancelled; the stream version decides races. */
export async function cancelServiceCall(
  deps: Deps,
  tenantId: string,
  serviceCallId: string,
  correlationId: string,
): Promise<ServiceCallState> {
  const now = (deps.now ?? (() => new Date()))();
  let appended = false;
  const cancelled = await handleCommand(deps, tenantId, serviceCallId, (state, history) => {
    appended = false;
    if (state === undefined) throw new NotFoundError(`service call ${serviceCallId} not found`);
    if (state.status === 'Cancelled') return { events: [], result: state };
    if (state.status !== 'Scheduled') {
      throw new StateConflictError(`service call is ${state.status}; only a Scheduled call can be cancelled`, state);
    }
    const event: Omit<ServiceCallCancelled, 'version'> = {
      ...nextEventEnvelope(state, history, randomUUID(), now),
      correlationId,
      type: 'ServiceCallCancelled',
      data: { source: 'api' },
    };
    appended = true;
    return { events: [event], result: evolve(state, { ...event, version: state.version + 1 }) };
  });
  if (appended) callsFinished.inc({ outcome: 'Cancelled' });
  return cancelled;
}
