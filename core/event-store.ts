import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { DbOrTx } from './db';
import { pgErrorOf } from './db';
import type { AnyEvent, NewEvent, ServiceCallEvent, Stored, StoredEvent, Unversioned } from './events';

/**
 * The Postgres event store (ADR-0002): append with an expected version, read a stream, read the
 * global log gap-free for consumers (ADR-0004). Appending and reading a stream are generic over
 * the aggregate's event union (ServiceCall's by default); every aggregate shares the one table.
 */

export class ConcurrencyError extends Error {
  override name = 'ConcurrencyError';
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
  ) {
    super(`stream ${streamId} is no longer at version ${expectedVersion}`);
  }
}

interface EventDbRow extends Record<string, unknown> {
  global_position: string | number;
  stream_id: string;
  version: number;
  message_id: string;
  tenant_id: string;
  aggregate_type: string;
  aggregate_id: string;
  type: string;
  schema_version: number;
  data: unknown;
  correlation_id: string;
  causation_id: string | null;
  timestamp: Date | string;
  tx: string;
}

const EVENT_COLUMNS = sql.raw(
  'global_position, stream_id, version, message_id, tenant_id, aggregate_type, aggregate_id, type, schema_version, data, correlation_id, causation_id, timestamp, tx::text as tx',
);

function toStoredEvent<E extends AnyEvent = ServiceCallEvent>(row: EventDbRow): Stored<E> {
  return {
    messageId: row.message_id,
    tenantId: row.tenant_id,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    type: row.type,
    version: row.version,
    timestamp: new Date(row.timestamp).toISOString(),
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    schemaVersion: row.schema_version,
    data: row.data,
    globalPosition: Number(row.global_position),
    tx: row.tx,
  } as Stored<E>;
}

/**
 * Appends `events` to `streamId` if and only if the stream is at `expectedVersion` (0 = new).
 * One statement: the version guard and the insert are atomic, and the unique keys on
 * (stream_id, version) and message_id turn a lost race or a repeated message into a
 * ConcurrencyError. Callers re-read the stream and decide again; a retried command whose events
 * are already there sees them and stops.
 */
export async function appendToStream<E extends AnyEvent = ServiceCallEvent>(
  db: DbOrTx,
  streamId: string,
  expectedVersion: number,
  newEvents: readonly NoInfer<Unversioned<E>>[],
): Promise<Stored<E>[]> {
  if (newEvents.length === 0) return [];
  const values = newEvents.map(
    (e, i) => sql`(${streamId}, ${expectedVersion + i + 1}::int, ${e.messageId}::uuid, ${e.tenantId},
      ${e.aggregateType}, ${e.aggregateId}::uuid, ${e.type}, ${e.schemaVersion}::int,
      ${JSON.stringify(e.data)}::jsonb, ${e.correlationId}, ${e.causationId}, ${e.timestamp}::timestamptz)`,
  );
  try {
    const result = await db.execute<EventDbRow>(sql`
      insert into events (stream_id, version, message_id, tenant_id, aggregate_type, aggregate_id,
                          type, schema_version, data, correlation_id, causation_id, timestamp)
      select * from (values ${sql.join(values, sql`, `)}) as v
      where (select coalesce(max(version), 0) from events where stream_id = ${streamId}) = ${expectedVersion}
      returning ${EVENT_COLUMNS}`);
    if (result.rows.length !== newEvents.length) throw new ConcurrencyError(streamId, expectedVersion);
    return result.rows.map((row) => toStoredEvent<E>(row)).sort((a, b) => a.version - b.version);
  } catch (err) {
    if (pgErrorOf(err)?.code === '23505') throw new ConcurrencyError(streamId, expectedVersion);
    throw err;
  }
}

export async function readStream<E extends AnyEvent = ServiceCallEvent>(
  db: DbOrTx,
  streamId: string,
): Promise<Stored<E>[]> {
  const result = await db.execute<EventDbRow>(
    sql`select ${EVENT_COLUMNS} from events where stream_id = ${streamId} order by version`,
  );
  return result.rows.map((row) => toStoredEvent<E>(row));
}

/**
 * The first event (version 1, ServiceCallSubmitted) of each of `streamIds`, in one query on the
 * (stream_id, version) key; streams that do not exist are absent.
 */
export async function readFirstEvents(db: DbOrTx, streamIds: readonly string[]): Promise<StoredEvent[]> {
  if (streamIds.length === 0) return [];
  // One array parameter (stream ids hold no quote or backslash: tenant ids and uuids).
  const ids = `{${streamIds.map((id) => `"${id}"`).join(',')}}`;
  const result = await db.execute<EventDbRow>(
    sql`select ${EVENT_COLUMNS} from events where stream_id = any(${ids}::text[]) and version = 1`,
  );
  return result.rows.map((row) => toStoredEvent(row));
}

export interface LogPosition {
  tx: string;
  globalPosition: number;
}

export const LOG_START: LogPosition = { tx: '0', globalPosition: 0 };

/**
 * Next events after `after`, in commit-safe order. Only transactions older than the oldest one
 * still running are read: a sequence number is taken before commit, so a later position can
 * become visible before an earlier one, and a reader that skipped ahead would lose the earlier
 * one for ever. Ordering by the transaction id first and stopping below the snapshot's xmin
 * means every row we pass is final.
 */
export async function readLogAfter(db: DbOrTx, after: LogPosition, limit: number): Promise<StoredEvent[]> {
  const result = await db.execute<EventDbRow>(sql`
    select ${EVENT_COLUMNS} from events
    where (tx, global_position) > (${after.tx}::xid8, ${after.globalPosition}::bigint)
      and tx < pg_snapshot_xmin(pg_current_snapshot())
    order by events.tx, events.global_position -- qualified: the bare name would sort the text alias
    limit ${limit}`);
  return result.rows.map((row) => toStoredEvent(row));
}

export const EVENTS_CHANNEL = 'punctual_events';

/**
 * Wakes log consumers after a commit. NOTIFY inside every append transaction serializes commits
 * (measured: half the append throughput), so it is sent after commit, at most one in flight per
 * process: appends that land while one is pending ride on the next. Consumers also poll, so a
 * lost notification only delays them.
 */
export class AppendNotifier {
  private inFlight = false;
  private again = false;

  constructor(private readonly pool: pg.Pool) {}

  poke(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    this.pool
      .query(`notify ${EVENTS_CHANNEL}`)
      .catch(() => undefined)
      .finally(() => {
        this.inFlight = false;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }
}

/** Every event of each of `streamIds`, in one query, by stream id and in version order. */
export async function readStreams(db: DbOrTx, streamIds: readonly string[]): Promise<Map<string, StoredEvent[]>> {
  const streams = new Map<string, StoredEvent[]>();
  if (streamIds.length === 0) return streams;
  const ids = `{${streamIds.map((id) => `"${id}"`).join(',')}}`;
  const result = await db.execute<EventDbRow>(
    sql`select ${EVENT_COLUMNS} from events where stream_id = any(${ids}::text[]) order by stream_id, version`,
  );
  for (const row of result.rows) {
    const list = streams.get(row.stream_id);
    if (list === undefined) streams.set(row.stream_id, [toStoredEvent(row)]);
    else list.push(toStoredEvent(row));
  }
  return streams;
}

export interface StreamAppend {
  streamId: string;
  expectedVersion: number;
  event: NewEvent;
}

/** Rows per statement: 12 parameters each, well under PostgreSQL's 65,535. */
const APPEND_EACH_CHUNK = 1_000;

/**
 * Appends one event to each of many streams in one statement per 1,000, each only if its stream
 * is still at its expected version: the event takes version expectedVersion + 1, and a stream
 * that moved on already has that version, so the unique key skips its row (ON CONFLICT DO
 * NOTHING) instead of failing the others. Returns the events that were appended; the rest lost
 * their race and are left out (bulk commands skip calls that changed meanwhile).
 */
export async function appendOneEach(db: DbOrTx, appends: readonly StreamAppend[]): Promise<StoredEvent[]> {
  const stored: StoredEvent[] = [];
  for (let i = 0; i < appends.length; i += APPEND_EACH_CHUNK) {
    const values = appends.slice(i, i + APPEND_EACH_CHUNK).map(
      ({ streamId, expectedVersion, event: e }) =>
        sql`(${streamId}, ${expectedVersion + 1}::int, ${e.messageId}::uuid, ${e.tenantId},
      ${e.aggregateType}, ${e.aggregateId}::uuid, ${e.type}, ${e.schemaVersion}::int,
      ${JSON.stringify(e.data)}::jsonb, ${e.correlationId}, ${e.causationId}, ${e.timestamp}::timestamptz)`,
    );
    const result = await db.execute<EventDbRow>(sql`
      insert into events (stream_id, version, message_id, tenant_id, aggregate_type, aggregate_id,
                          type, schema_version, data, correlation_id, causation_id, timestamp)
      values ${sql.join(values, sql`, `)}
      on conflict do nothing
      returning ${EVENT_COLUMNS}`);
    stored.push(...result.rows.map(toStoredEvent));
  }
  return stored;
}
