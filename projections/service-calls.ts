import { and, eq, sql, type SQL } from 'drizzle-orm';
import { serviceCalls, type ServiceCallRow } from '../drizzle/schema';
import type { DbOrTx } from '../core/db';
import type { AttemptRecord, CallResult, HttpMethod, StoredEvent, RetryPolicy } from '../core/events';
import { redactHeaders } from '../core/redact';
import { evolve, type ServiceCallState, type Status } from '../core/service-call';
import type { Logger } from '../core/logger';
import type { LogConsumer } from './relay';

/**
 * The service-calls read model (ADR-0007): its table, the function that applies events to it,
 * and the queries the API serves from it, together.
 */

export const PROJECTION_NAME = 'service-calls';

/** What the API shows of a call. Header values are redacted; the body is never shown. */
export interface ServiceCallView {
  id: string;
  status: Status;
  request: { method: HttpMethod; url: string; headers: Record<string, string> };
  dueAt: string;
  tags: string[];
  retry: RetryPolicy;
  timeoutMs: number;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  attempts: AttemptRecord[];
  result: CallResult | null;
  /** The finished call this one replays; null for a call submitted directly. */
  replayOf: string | null;
}

export function toView(state: ServiceCallState): ServiceCallView {
  return {
    id: state.id,
    status: state.status,
    request: {
      method: state.request.method,
      url: state.request.url,
      headers: redactHeaders(state.request.headers),
    },
    dueAt: state.dueAt,
    tags: state.tags,
    retry: state.retry,
    timeoutMs: state.timeoutMs,
    nextAttemptAt: state.nextAttemptAt,
    createdAt: state.createdAt,
    updatedAt: state.updatedAt,
    attempts: state.attempts,
    result: state.result,
    replayOf: state.replayOf,
  };
}

/** Ids of the calls that replay `id`, oldest first (its detail's `replays`). */
export async function findReplays(db: DbOrTx, tenantId: string, id: string): Promise<string[]> {
  const rows = await db
    .select({ id: serviceCalls.id })
    .from(serviceCalls)
    .where(and(eq(serviceCalls.tenantId, tenantId), eq(serviceCalls.replayOf, id)))
    .orderBy(serviceCalls.createdAt, serviceCalls.id);
  return rows.map((r) => r.id);
}

function rowToState(row: ServiceCallRow): ServiceCallState {
  return {
    tenantId: row.tenantId,
    id: row.id,
    status: row.status as Status,
    request: {
      method: row.method as HttpMethod,
      url: row.url,
      headers: row.headers as Record<string, string>,
    },
    dueAt: row.dueAt.toISOString(),
    tags: row.tags,
    retry: row.retry as RetryPolicy,
    timeoutMs: row.timeoutMs,
    nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    attempts: row.attempts as AttemptRecord[],
    result: row.result as CallResult | null,
    replayOf: row.replayOf,
    version: row.version,
  };
}

function stateToRow(state: ServiceCallState): typeof serviceCalls.$inferInsert {
  return {
    tenantId: state.tenantId,
    id: state.id,
    status: state.status,
    method: state.request.method,
    url: state.request.url,
    headers: redactHeaders(state.request.headers),
    dueAt: new Date(state.dueAt),
    tags: state.tags,
    retry: state.retry,
    timeoutMs: state.timeoutMs,
    nextAttemptAt: state.nextAttemptAt === null ? null : new Date(state.nextAttemptAt),
    createdAt: new Date(state.createdAt),
    updatedAt: new Date(state.updatedAt),
    attempts: state.attempts,
    result: state.result,
    replayOf: state.replayOf,
    version: state.version,
  };
}

/**
 * Applies a batch: loads the rows it touches in one query, folds the new events into them and
 * upserts them in one statement. Events at or below a row's version were applied already and
 * are skipped, and the upsert only moves a row forward, so a replayed batch changes nothing.
 */
export async function applyEvents(
  tx: DbOrTx,
  batch: readonly StoredEvent[],
  onUpsert?: (state: ServiceCallState, lastEvent: StoredEvent) => void,
): Promise<number> {
  if (batch.length === 0) return 0;
  const keyOf = (tenantId: string, id: string) => `${tenantId}/${id}`;
  const keys = new Map(batch.map((e) => [keyOf(e.tenantId, e.aggregateId), e]));
  const existing = await tx
    .select()
    .from(serviceCalls)
    .where(
      sql`(${serviceCalls.tenantId}, ${serviceCalls.id}) in (${sql.join(
        [...keys.values()].map((e) => sql`(${e.tenantId}, ${e.aggregateId}::uuid)`),
        sql`, `,
      )})`,
    );
  const states = new Map<string, ServiceCallState>();
  for (const row of existing) states.set(keyOf(row.tenantId, row.id), rowToState(row));
  const touched = new Map<string, StoredEvent>();
  for (const event of batch) {
    const key = keyOf(event.tenantId, event.aggregateId);
    const state = states.get(key);
    if (state !== undefined && event.version <= state.version) continue;
    states.set(key, evolve(state, event));
    touched.set(key, event);
  }
  if (touched.size === 0) return 0;
  const rows = [...touched.keys()].map((k) => stateToRow(states.get(k)!));
  await tx
    .insert(serviceCalls)
    .values(rows)
    .onConflictDoUpdate({
      target: [serviceCalls.tenantId, serviceCalls.id],
      set: {
        status: sql`excluded.status`,
        headers: sql`excluded.headers`,
        dueAt: sql`excluded.due_at`,
        tags: sql`excluded.tags`,
        updatedAt: sql`excluded.updated_at`,
        attempts: sql`excluded.attempts`,
        result: sql`excluded.result`,
        nextAttemptAt: sql`excluded.next_attempt_at`,
        version: sql`excluded.version`,
      },
      setWhere: sql`${serviceCalls.version} < excluded.version`,
    });
  if (onUpsert !== undefined) for (const [key, event] of touched) onUpsert(states.get(key)!, event);
  return rows.length;
}

/** The projection as a log consumer; with a logger, each upserted row is logged at debug. */
export function createServiceCallsProjection(log?: Logger): LogConsumer {
  return {
    name: PROJECTION_NAME,
    transactional: true,
    async handle(batch, tx) {
      await applyEvents(
        tx,
        batch,
        log === undefined
          ? undefined
          : (state, event) =>
              log.debug(
                {
                  tenantId: state.tenantId,
                  serviceCallId: state.id,
                  status: state.status,
                  version: state.version,
                  correlationId: event.correlationId,
                  causationId: event.messageId,
                },
                'read model upserted',
              ),
      );
    },
  };
}

export const serviceCallsProjection: LogConsumer = createServiceCallsProjection();

export async function findServiceCall(db: DbOrTx, tenantId: string, id: string): Promise<ServiceCallState | undefined> {
  const [row] = await db
    .select()
    .from(serviceCalls)
    .where(and(eq(serviceCalls.tenantId, tenantId), eq(serviceCalls.id, id)));
  return row === undefined ? undefined : rowToState(row);
}

/** A call as the list shows it: the detail without its attempts. */
export type ServiceCallSummary = Omit<ServiceCallView, 'attempts'>;

/**
 * A place in the list order (createdAt desc, id desc). `createdAt` keeps Postgres' microseconds
 * as text: a JS Date would round them away and a page boundary could skip or repeat a row.
 */
export interface ListPosition {
  createdAt: string;
  id: string;
}

export interface ListFilter {
  /** Any of these; empty means every status. */
  statuses: readonly Status[];
  /** Every one of these. */
  tags: readonly string[];
  /** Half-open windows: after ≤ t < before. */
  createdAfter?: Date;
  createdBefore?: Date;
  dueAfter?: Date;
  dueBefore?: Date;
  /** Only the replays of this call. */
  replayOf?: string;
  limit: number;
  /** Continue strictly after this position. */
  after?: ListPosition;
}

export interface ListPage {
  items: ServiceCallSummary[];
  /** Where the next page starts; null on the last page. */
  next: ListPosition | null;
}

const POSITION_TEXT = sql`to_char(${serviceCalls.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * One index range in list order. Every predicate sits beside `tenant_id = …`, so nothing can
 * reach another tenant's rows; the keyset condition is a row comparison the btree walks from.
 */
function listBranch(tenantId: string, filter: ListFilter, status: Status | undefined, limit: number): SQL {
  const where: SQL[] = [sql`${serviceCalls.tenantId} = ${tenantId}`];
  if (status !== undefined) where.push(sql`${serviceCalls.status} = ${status}`);
  if (filter.tags.length > 0) {
    const tags = sql.join(
      filter.tags.map((t) => sql`${t}`),
      sql`, `,
    );
    where.push(sql`${serviceCalls.tags} @> array[${tags}]::text[]`);
  }
  const at = (d: Date) => sql`${d.toISOString()}::timestamptz`;
  if (filter.createdAfter !== undefined) where.push(sql`${serviceCalls.createdAt} >= ${at(filter.createdAfter)}`);
  if (filter.createdBefore !== undefined) where.push(sql`${serviceCalls.createdAt} < ${at(filter.createdBefore)}`);
  if (filter.dueAfter !== undefined) where.push(sql`${serviceCalls.dueAt} >= ${at(filter.dueAfter)}`);
  if (filter.dueBefore !== undefined) where.push(sql`${serviceCalls.dueAt} < ${at(filter.dueBefore)}`);
  if (filter.replayOf !== undefined) where.push(sql`${serviceCalls.replayOf} = ${filter.replayOf}::uuid`);
  if (filter.after !== undefined) {
    where.push(
      sql`(${serviceCalls.createdAt}, ${serviceCalls.id}) < (${filter.after.createdAt}::timestamptz, ${filter.after.id}::uuid)`,
    );
  }
  return sql`select ${serviceCalls.id} as id, ${serviceCalls.status} as status, ${serviceCalls.method} as method,
      ${serviceCalls.url} as url, ${serviceCalls.headers} as headers, ${serviceCalls.dueAt} as due_at,
      ${serviceCalls.tags} as tags, ${serviceCalls.retry} as retry, ${serviceCalls.timeoutMs} as timeout_ms,
      ${serviceCalls.nextAttemptAt} as next_attempt_at, ${serviceCalls.createdAt} as created_at,
      ${serviceCalls.updatedAt} as updated_at, ${serviceCalls.result} as result,
      ${serviceCalls.replayOf} as replay_of, ${POSITION_TEXT} as position
    from ${serviceCalls}
    where ${sql.join(where, sql` and `)}
    order by ${serviceCalls.createdAt} desc, ${serviceCalls.id} desc
    limit ${limit}`;
}

/**
 * The SQL of one list page. Several statuses become one branch per status, merged: each branch
 * reads at most one page from its own index range in list order, however common or rare its
 * status is (a single `status in (…)` scan would have to sort every match, or filter its way
 * down the unfiltered order).
 */
export function listQuery(tenantId: string, filter: ListFilter): SQL {
  const fetch = filter.limit + 1;
  const statuses = [...new Set(filter.statuses)];
  if (statuses.length <= 1) return listBranch(tenantId, filter, statuses[0], fetch);
  const branches = statuses.map((status) => sql`(${listBranch(tenantId, filter, status, fetch)})`);
  return sql`select * from (${sql.join(branches, sql` union all `)}) as page
    order by created_at desc, id desc
    limit ${fetch}`;
}

interface ListRow extends Record<string, unknown> {
  id: string;
  status: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Raw statements return timestamptz as Postgres text (drizzle's driver settings). */
  due_at: string | Date;
  tags: string[];
  retry: RetryPolicy;
  timeout_ms: number;
  next_attempt_at: string | Date | null;
  created_at: string | Date;
  updated_at: string | Date;
  result: CallResult | null;
  replay_of: string | null;
  position: string;
}

const isoOf = (value: string | Date): string => new Date(value).toISOString();

/** One page of a tenant's calls, newest first, from the read model only. */
export async function listServiceCalls(db: DbOrTx, tenantId: string, filter: ListFilter): Promise<ListPage> {
  const { rows } = await db.execute<ListRow>(listQuery(tenantId, filter));
  const page = rows.slice(0, filter.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((row) => ({
      id: row.id,
      status: row.status as Status,
      request: { method: row.method as HttpMethod, url: row.url, headers: redactHeaders(row.headers) },
      dueAt: isoOf(row.due_at),
      tags: row.tags,
      retry: row.retry,
      timeoutMs: row.timeout_ms,
      nextAttemptAt: row.next_attempt_at === null ? null : isoOf(row.next_attempt_at),
      createdAt: isoOf(row.created_at),
      updatedAt: isoOf(row.updated_at),
      result: row.result,
      replayOf: row.replay_of,
    })),
    next: rows.length > filter.limit && last !== undefined ? { createdAt: last.position, id: last.id } : null,
  };
}
