import { randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { idempotencyKeys } from '../drizzle/schema';
import type { Db, DbOrTx } from './db';
import {
  AGGREGATE_TYPE,
  SCHEMA_VERSION,
  type CallbackSpec,
  type HttpRequestSpec,
  type EventBody,
  type NewEvent,
  type RequestSecrets,
  type RetryPolicy,
  type ScheduleRunRef,
  type ServiceCallSubmitted,
  type StoredEvent,
} from './events';
import {
  appendOneEach,
  appendToStream,
  ConcurrencyError,
  readFirstEvents,
  readStream,
  type AppendNotifier,
} from './event-store';
import type { Keyring } from './crypto';
import { serviceCallIdFor, streamIdFor } from './ids';
import type { Logger } from './logger';
import { callbackDeliveries, callsFinished, eventsAppended } from './metrics';
import type { HeaderRedactor } from './redact';
import { evolve, fold, type ServiceCallState } from './service-call';
import { decide, NotFoundError, type Command } from './decider';

/** Command handlers: read the stream, decide, append with the version read (ADR-0002). */

export class IdempotencyKeyReusedError extends Error {
  override name = 'IdempotencyKeyReusedError';
  constructor(readonly idempotencyKey: string) {
    super('this Idempotency-Key was already used with a different request');
  }
}

export { NotFoundError, StateConflictError } from './decider';

/**
 * Claims an Idempotency-Key for the aggregate `id` in the transaction `tx`: undefined when this is
 * the key's first use (the caller then appends), else the id of what the key made before with the
 * same fingerprint. The same key with another fingerprint → IdempotencyKeyReusedError. A
 * concurrent claim of one key waits on the unique index until the first commits, then sees its row:
 * exactly one of them writes the events.
 */
export async function claimIdempotencyKey(
  tx: DbOrTx,
  claim: { tenantId: string; key: string; id: string; fingerprint: string },
): Promise<string | undefined> {
  const { tenantId, key, id, fingerprint } = claim;
  const inserted = await tx
    .insert(idempotencyKeys)
    .values({ tenantId, key, serviceCallId: id, fingerprint })
    .onConflictDoNothing()
    .returning({ id: idempotencyKeys.serviceCallId });
  if (inserted.length > 0) return undefined;
  const [existing] = await tx
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key)));
  if (existing === undefined) throw new Error(`idempotency row of ${key} vanished`);
  if (existing.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError(key);
  return existing.serviceCallId;
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
  /** Absent: no callback. */
  callback?: CallbackSpec | undefined;
  /** Set on a schedule's run (ADR-0017); absent on a call submitted directly. */
  schedule?: ScheduleRunRef | undefined;
  /** Keys whose flow limits the call obeys (ADR-0018); absent: none. Fingerprinted like the rest. */
  flowKeys?: string[] | undefined;
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

const CALLBACK_OUTCOME: Partial<Record<NewEvent['type'], 'delivered' | 'retry' | 'failed'>> = {
  CallbackDelivered: 'delivered',
  CallbackAttemptFailed: 'retry',
  CallbackFailed: 'failed',
};

const FINISHED_OUTCOME: Partial<Record<NewEvent['type'], 'Succeeded' | 'Failed' | 'Cancelled'>> = {
  ServiceCallSucceeded: 'Succeeded',
  ServiceCallFailed: 'Failed',
  ServiceCallCancelled: 'Cancelled',
};

/**
 * Counts and logs events once they are appended: the one place outcome metrics are counted, so a
 * decision that is retried or repeated (and appends nothing) never counts twice.
 */
export function recordAppended(deps: Deps, events: readonly NewEvent[]): void {
  for (const e of events) {
    eventsAppended.inc({ type: e.type });
    const outcome = FINISHED_OUTCOME[e.type];
    if (outcome !== undefined) callsFinished.inc({ outcome });
    const delivery = CALLBACK_OUTCOME[e.type];
    if (delivery !== undefined) callbackDeliveries.inc({ outcome: delivery });
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

export function canonicalJson(value: unknown): string {
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
interface PlannedSubmit {
  cmd: SubmitCommand;
  id: string;
  streamId: string;
  event: Omit<ServiceCallSubmitted, 'version'>;
}

/** The ServiceCallSubmitted a submit decides, with its secrets sealed for the call's stream. */
function planSubmit(deps: Deps, cmd: SubmitCommand, now: Date): PlannedSubmit {
  const id = serviceCallIdFor(cmd.tenantId, cmd.idempotencyKey);
  const streamId = streamIdFor(cmd.tenantId, id);
  const { visible, secret } = deps.redactor.split(cmd.request.headers);
  const secrets: RequestSecrets = { headers: secret, body: cmd.request.body };
  const hasSecrets = Object.keys(secret).length > 0 || cmd.request.body !== null;
  const [body] = decide(
    {
      type: 'Submit',
      now,
      request: { method: cmd.request.method, url: cmd.request.url, headers: visible },
      secrets: hasSecrets ? deps.keyring.seal(secrets, streamId) : null,
      dueAt: cmd.dueAt === undefined ? undefined : new Date(cmd.dueAt),
      tags: cmd.tags,
      idempotencyKey: cmd.idempotencyKey ?? null,
      retry: cmd.retry,
      timeoutMs: cmd.timeoutMs,
      callback: cmd.callback ?? null,
      schedule: cmd.schedule ?? null,
      ...(cmd.flowKeys === undefined ? {} : { flowKeys: cmd.flowKeys }),
    },
    undefined,
  );
  if (body?.type !== 'ServiceCallSubmitted') throw new Error('a submit decides ServiceCallSubmitted');
  const event: Omit<ServiceCallSubmitted, 'version'> = {
    ...newStreamEnvelope({ tenantId: cmd.tenantId, id, now, correlationId: cmd.correlationId }),
    ...body,
  };
  return { cmd, id, streamId, event };
}

/**
 * Records a new call: the idempotency row and ServiceCallSubmitted commit together, so the call
 * is durable from the moment the API answers, whatever Temporal is doing. The relay starts its
 * workflow from the event.
 */
export async function submitServiceCall(deps: Deps, cmd: SubmitCommand): Promise<SubmitResult> {
  const now = (deps.now ?? (() => new Date()))();
  const { streamId, id, event } = planSubmit(deps, cmd, now);
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
          const existing = await claimIdempotencyKey(tx, {
            tenantId: cmd.tenantId,
            key: idempotencyKey,
            id,
            fingerprint,
          });
          if (existing === undefined) return append(tx);
          const [first] = await readStream(tx, streamIdFor(cmd.tenantId, existing));
          if (first === undefined) throw new Error(`call ${existing} has no events`);
          return submitResultOf(first, true);
        });
  if (!result.replayed) {
    deps.notifier.poke();
    recordAppended(deps, [event]);
  }
  return result;
}

/** One submit of a batch: its result, or why its Idempotency-Key refuses it. */
export type BatchSubmitOutcome = SubmitResult | IdempotencyKeyReusedError;

/**
 * Many submits of one tenant in one transaction of four statements whatever their number: the
 * idempotency rows of the keyed ones (the first submit of a key in the batch owns it), the rows
 * that were there already, the first events of those calls, and every new call's event. Each
 * submit is answered as `submitServiceCall` would answer it alone: a key seen before (in an
 * earlier request, or earlier in this batch) with the same request is a replay, with another a
 * refusal. Concurrent batches sharing keys serialise on the unique index as single submits do.
 */
export async function submitServiceCalls(
  deps: Deps,
  tenantId: string,
  cmds: readonly SubmitCommand[],
): Promise<BatchSubmitOutcome[]> {
  if (cmds.some((c) => c.tenantId !== tenantId)) throw new Error('a batch belongs to one tenant');
  if (cmds.length === 0) return [];
  const now = (deps.now ?? (() => new Date()))();
  const planned = cmds.map((cmd) => planSubmit(deps, cmd, now));
  const fingerprints = planned.map((p) =>
    p.cmd.idempotencyKey === undefined ? '' : fingerprintOf(p.cmd, deps.keyring),
  );
  /** The first item of each key: the one whose row and event are written if the key is new. */
  const owners = new Map<string, number>();
  planned.forEach((p, i) => {
    const key = p.cmd.idempotencyKey;
    if (key !== undefined && !owners.has(key)) owners.set(key, i);
  });
  const { outcomes, appended } = await deps.db.transaction(async (tx) => {
    // Inserted in key order: two batches sharing keys then lock them in the same order, and wait
    // for each other instead of deadlocking.
    const ownerRows = [...owners.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, i]) => ({
        tenantId,
        key,
        serviceCallId: planned[i]!.id,
        fingerprint: fingerprints[i]!,
      }));
    const inserted =
      ownerRows.length === 0
        ? []
        : await tx
            .insert(idempotencyKeys)
            .values(ownerRows)
            .onConflictDoNothing()
            .returning({ key: idempotencyKeys.key });
    const fresh = new Set(inserted.map((r) => r.key));
    const taken = [...owners.keys()].filter((key) => !fresh.has(key));
    const existing =
      taken.length === 0
        ? []
        : await tx
            .select()
            .from(idempotencyKeys)
            .where(and(eq(idempotencyKeys.tenantId, tenantId), inArray(idempotencyKeys.key, taken)));
    const rows = new Map(existing.map((r) => [r.key, r]));
    const firsts = new Map(
      (
        await readFirstEvents(
          tx,
          existing.map((r) => streamIdFor(tenantId, r.serviceCallId)),
        )
      ).map((e) => [streamIdFor(e.tenantId, e.aggregateId), e]),
    );
    const toAppend = planned.filter((p, i) => {
      const key = p.cmd.idempotencyKey;
      return key === undefined || (owners.get(key) === i && fresh.has(key));
    });
    const stored = await appendOneEach(
      tx,
      toAppend.map((p) => ({ streamId: p.streamId, expectedVersion: 0, event: p.event })),
    );
    if (stored.length !== toAppend.length) throw new Error('a new call of the batch has events already');
    const byId = new Map(stored.map((e) => [e.aggregateId, e]));
    const answers = planned.map((p, i): BatchSubmitOutcome => {
      const key = p.cmd.idempotencyKey;
      if (key === undefined) return submitResultOf(byId.get(p.id)!, false);
      const owner = owners.get(key)!;
      if (fresh.has(key)) {
        if (owner === i) return submitResultOf(byId.get(p.id)!, false);
        // A later item with the key an earlier item of this batch took.
        return fingerprints[i] === fingerprints[owner]
          ? submitResultOf(byId.get(planned[owner]!.id)!, true)
          : new IdempotencyKeyReusedError(key);
      }
      const row = rows.get(key);
      if (row === undefined) throw new Error('idempotency row vanished during submit');
      if (row.fingerprint !== fingerprints[i]) return new IdempotencyKeyReusedError(key);
      const first = firsts.get(streamIdFor(tenantId, row.serviceCallId));
      if (first === undefined) throw new Error(`call ${row.serviceCallId} has no events`);
      return submitResultOf(first, true);
    });
    return { outcomes: answers, appended: stored };
  });
  if (appended.length > 0) {
    deps.notifier.poke();
    recordAppended(deps, appended);
  }
  return outcomes;
}

export interface CommandOptions {
  /**
   * The stream as the caller last read it, to decide on without reading it again. A stale one
   * costs a retry, never a wrong write: the append's version check refuses it and the stream is
   * read afresh. Events are only ever added, so a decision to do nothing stays right.
   */
  known?: readonly StoredEvent[];
}

export interface CommandOutcome {
  /** The call after the command (unchanged when nothing was appended). */
  state: ServiceCallState;
  /** The stream after the command. */
  history: StoredEvent[];
  /** What this command appended; empty when the decision was to do nothing. */
  appended: StoredEvent[];
}

export interface EnvelopeOptions {
  /** The message id of each decided event: deterministic for activity writes (ADR-0003). */
  messageIdFor?: (body: EventBody) => string;
  /** Defaults to the call's own correlation id (that of its submit). */
  correlationId?: string;
  now?: Date;
}

/**
 * Reads the call's stream, decides `command` on its state (core/decider.ts) and appends what was
 * decided with the version read, deciding again when another writer got there first (ADR-0002:
 * the stream version settles every race, e.g. cancel or reschedule against the due time).
 */
export async function handleCommand(
  deps: Deps,
  tenantId: string,
  serviceCallId: string,
  command: Command,
  envelope: EnvelopeOptions = {},
  opts: CommandOptions = {},
): Promise<CommandOutcome> {
  const streamId = streamIdFor(tenantId, serviceCallId);
  const now = envelope.now ?? (deps.now ?? (() => new Date()))();
  for (let round = 1; ; round++) {
    const history = round === 1 && opts.known !== undefined ? [...opts.known] : await readStream(deps.db, streamId);
    const state = fold(history);
    const bodies = decide(command, state);
    if (state === undefined || bodies.length === 0) {
      if (state === undefined) throw new NotFoundError(`service call ${serviceCallId} not found`);
      return { state, history, appended: [] };
    }
    const events = bodies.map((body) => ({
      ...nextEventEnvelope(state, history, envelope.messageIdFor?.(body) ?? randomUUID(), now),
      ...(envelope.correlationId === undefined ? {} : { correlationId: envelope.correlationId }),
      ...body,
    }));
    try {
      const stored = await appendToStream(deps.db, streamId, state.version, events);
      deps.notifier.poke();
      recordAppended(deps, events);
      const after = [...history, ...stored];
      return { state: stored.reduce(evolve, state), history: after, appended: stored };
    } catch (err) {
      if (!(err instanceof ConcurrencyError) || round >= 10) throw err;
    }
  }
}

/** The request exactly as submitted: the stored summary with its sealed secrets put back. */
export function requestFromSubmitted(
  data: Pick<ServiceCallSubmitted['data'], 'request' | 'secrets'>,
  streamId: string,
  keyring: Keyring,
): HttpRequestSpec {
  if (data.secrets === null) return { ...data.request, body: null };
  const secrets = keyring.open<RequestSecrets>(data.secrets, streamId);
  return { ...data.request, headers: { ...data.request.headers, ...secrets.headers }, body: secrets.body };
}

/**
 * Envelope of the first event of a new call's stream (a submit, or a replay caused by the
 * original's last event).
 */
export function newStreamEnvelope(opts: {
  tenantId: string;
  id: string;
  now: Date;
  correlationId: string;
  causedBy?: StoredEvent | undefined;
}): Omit<NewEvent, 'type' | 'data'> {
  return {
    messageId: randomUUID(),
    tenantId: opts.tenantId,
    aggregateType: AGGREGATE_TYPE,
    aggregateId: opts.id,
    timestamp: opts.now.toISOString(),
    correlationId: opts.correlationId,
    causationId: opts.causedBy?.messageId ?? null,
    schemaVersion: SCHEMA_VERSION,
  };
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
  const { state } = await handleCommand(
    deps,
    tenantId,
    serviceCallId,
    { type: 'Cancel', source: 'api' },
    { correlationId },
  );
  return state;
}

/**
 * The API's reschedule: only a Scheduled call moves. The relay then nudges its workflow, which
 * reads the new dueAt from the stream (ADR-0012); a race with the due time is settled by the
 * stream version, so exactly one of them is recorded.
 */
export async function rescheduleServiceCall(
  deps: Deps,
  tenantId: string,
  serviceCallId: string,
  dueAt: string,
  correlationId: string,
): Promise<ServiceCallState> {
  const now = (deps.now ?? (() => new Date()))();
  const { state } = await handleCommand(
    deps,
    tenantId,
    serviceCallId,
    { type: 'Reschedule', now, dueAt: new Date(dueAt) },
    { correlationId, now },
  );
  return state;
}

/**
 * Same replay ⇔ same fingerprint: the original, the instant and the callback asked for (keyed, as
 * on submit). A replay that leaves the callback out hashes as it did before callbacks existed.
 */
export function replayFingerprint(
  deps: Pick<Deps, 'keyring'>,
  originalId: string,
  dueAt: string | undefined,
  callback?: CallbackSpec | null,
  flowKeys?: string[],
): string {
  return deps.keyring.mac(
    canonicalJson({
      replayOf: originalId,
      dueAt: dueAt === undefined ? null : new Date(dueAt).getTime(),
      ...(callback === undefined ? {} : { callback }),
      ...(flowKeys === undefined ? {} : { flowKeys }),
    }),
  );
}

export interface ReplayRequest {
  tenantId: string;
  /** The finished call to run again. */
  originalId: string;
  idempotencyKey: string | undefined;
  /** As requested; absent or past means now. */
  dueAt: string | undefined;
  /** The replay's callback: absent keeps the original's, null asks for none. */
  callback?: CallbackSpec | null | undefined;
  /** The replay's flow keys: absent keeps the original's. */
  flowKeys?: string[] | undefined;
  correlationId: string;
}

export interface ReplayResult extends SubmitResult {
  replayOf: string;
}

/**
 * Replays a finished call as a new one (ADR-0012): decided on the original's state, appended as
 * the new call's ServiceCallSubmitted with `replayOf`. The secrets are opened and sealed again for
 * the new stream (a sealed value is bound to its stream), so the target gets them intact. With an
 * Idempotency-Key the row and the event commit together, as on submit.
 */
export async function replayServiceCall(deps: Deps, cmd: ReplayRequest): Promise<ReplayResult> {
  const now = (deps.now ?? (() => new Date()))();
  const originalStream = streamIdFor(cmd.tenantId, cmd.originalId);
  const history = await readStream(deps.db, originalStream);
  const original = fold(history);
  const first = history[0];
  if (original === undefined || first?.type !== 'ServiceCallSubmitted') {
    throw new NotFoundError(`service call ${cmd.originalId} not found`);
  }
  const id = serviceCallIdFor(cmd.tenantId, cmd.idempotencyKey);
  const streamId = streamIdFor(cmd.tenantId, id);
  const sealed = first.data.secrets;
  const secrets =
    sealed === null ? null : deps.keyring.seal(deps.keyring.open<RequestSecrets>(sealed, originalStream), streamId);
  const [body] = decide(
    {
      type: 'Replay',
      now,
      dueAt: cmd.dueAt === undefined ? undefined : new Date(cmd.dueAt),
      secrets,
      idempotencyKey: cmd.idempotencyKey ?? null,
      callback: cmd.callback,
      flowKeys: cmd.flowKeys,
    },
    original,
  );
  if (body?.type !== 'ServiceCallSubmitted') throw new Error('a replay decides ServiceCallSubmitted');
  const event: Omit<ServiceCallSubmitted, 'version'> = {
    // The new call's history starts from the original's last event.
    ...newStreamEnvelope({
      tenantId: cmd.tenantId,
      id,
      now,
      correlationId: cmd.correlationId,
      causedBy: history.at(-1),
    }),
    ...body,
  };
  const resultOf = (stored: StoredEvent, replayed: boolean): ReplayResult => ({
    ...submitResultOf(stored, replayed),
    replayOf: stored.type === 'ServiceCallSubmitted' ? (stored.data.replayOf ?? cmd.originalId) : cmd.originalId,
  });
  const append = async (db: DbOrTx): Promise<ReplayResult> => {
    const [stored] = await appendToStream(db, streamId, 0, [event]);
    if (stored === undefined) throw new Error('append returned no event');
    return resultOf(stored, false);
  };
  const key = cmd.idempotencyKey;
  const result =
    key === undefined
      ? await append(deps.db)
      : await deps.db.transaction(async (tx) => {
          const fingerprint = replayFingerprint(deps, cmd.originalId, cmd.dueAt, cmd.callback, cmd.flowKeys);
          const existing = await claimIdempotencyKey(tx, { tenantId: cmd.tenantId, key, id, fingerprint });
          if (existing === undefined) return append(tx);
          const [stored] = await readStream(tx, streamIdFor(cmd.tenantId, existing));
          if (stored === undefined) throw new Error(`call ${existing} has no events`);
          return resultOf(stored, true);
        });
  if (!result.replayed) {
    deps.notifier.poke();
    recordAppended(deps, [event]);
  }
  return result;
}
