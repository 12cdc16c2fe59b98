import { and, desc, eq, getTableColumns, sql, type SQL } from 'drizzle-orm';
import { serviceCalls, type ServiceCallRow } from '../drizzle/schema';
import type { DbOrTx } from '../core/db';
import { AGGREGATE_TYPE, type StoredEvent } from '../core/events';
import { shownRequest, toView, type ServiceCallView } from '../core/view';
import { evolve, type CallbackStatus, type ServiceCallState, type Status } from '../core/service-call';
import type { Logger } from '../core/logger';
import type { LogConsumer } from './relay';

/**
 * The service-calls read model (ADR-0007): its table, the function that applies events to it,
 * and the queries the API serves from it, together.
 */

export const PROJECTION_NAME = 'service-calls';

/** Ids of the calls that replay `id`, oldest first (its detail's `replays`). */
export async function findReplays(db: DbOrTx, tenantId: string, id: string): Promise<string[]> {
  const rows = await db
    .select({ id: serviceCalls.id })
    .from(serviceCalls)
    .where(and(eq(serviceCalls.tenantId, tenantId), eq(serviceCalls.replayOf, id)))
    .orderBy(serviceCalls.createdAt, serviceCalls.id);
  return rows.map((r) => r.id);
}

/** Fields a document written before they existed lacks, as the state has them now. */
function withDefaults<
  T extends Partial<Pick<ServiceCallState, 'callback' | 'scheduleId' | 'scheduledAt' | 'flowKeys'>>,
>(doc: T): T & Pick<ServiceCallState, 'callback' | 'scheduleId' | 'scheduledAt' | 'flowKeys'> {
  return {
    ...doc,
    callback: doc.callback ?? null,
    scheduleId: doc.scheduleId ?? null,
    scheduledAt: doc.scheduledAt ?? null,
    flowKeys: doc.flowKeys ?? [],
  };
}

/** The stream version column is what the upsert compares: it is the one the state carries. */
function rowToState(row: ServiceCallRow): ServiceCallState {
  return { ...withDefaults(row.state), version: row.version };
}

/** The document, and copies of the fields the list filters or sorts on. */
function stateToRow(state: ServiceCallState): typeof serviceCalls.$inferInsert {
  return {
    tenantId: state.tenantId,
    id: state.id,
    state: { ...state, request: shownRequest(state.request) },
    status: state.status,
    dueAt: new Date(state.dueAt),
    tags: state.tags,
    createdAt: new Date(state.createdAt),
    replayOf: state.replayOf,
    callbackStatus: state.callback?.status ?? null,
    scheduleId: state.scheduleId,
    version: state.version,
  };
}

/**
 * Every column but the key takes the newer row's value: a column added to the table is updated
 * without a list to extend.
 */
const UPSERT_SET = Object.fromEntries(
  Object.entries(getTableColumns(serviceCalls))
    .filter(([name]) => name !== 'tenantId' && name !== 'id')
    .map(([name, column]) => [name, sql.raw(`excluded.${column.name}`)]),
);

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
  // The log holds every aggregate's events; schedules have their own projection.
  const calls = batch.filter((e) => e.aggregateType === AGGREGATE_TYPE);
  if (calls.length === 0) return 0;
  const keyOf = (tenantId: string, id: string) => `${tenantId}/${id}`;
  const keys = new Map(calls.map((e) => [keyOf(e.tenantId, e.aggregateId), e]));
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
  for (const event of calls) {
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
      set: UPSERT_SET,
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
  /** Only calls whose callback is in this status. */
  callbackStatus?: CallbackStatus;
  /** Only the runs of this schedule. */
  scheduleId?: string;
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
  if (filter.callbackStatus !== undefined) where.push(sql`${serviceCalls.callbackStatus} = ${filter.callbackStatus}`);
  if (filter.scheduleId !== undefined) where.push(sql`${serviceCalls.scheduleId} = ${filter.scheduleId}::uuid`);
  if (filter.after !== undefined) {
    where.push(
      sql`(${serviceCalls.createdAt}, ${serviceCalls.id}) < (${filter.after.createdAt}::timestamptz, ${filter.after.id}::uuid)`,
    );
  }
  // The list shows no attempts: they stay in the database.
  return sql`select ${serviceCalls.id} as id, ${serviceCalls.state} - 'attempts' as state,
      ${serviceCalls.createdAt} as created_at, ${POSITION_TEXT} as position
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
  state: Omit<ServiceCallState, 'attempts'>;
  position: string;
}

/** One page of a tenant's calls, newest first, from the read model only. */
export async function listServiceCalls(db: DbOrTx, tenantId: string, filter: ListFilter): Promise<ListPage> {
  const { rows } = await db.execute<ListRow>(listQuery(tenantId, filter));
  const page = rows.slice(0, filter.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((row) => {
      const { attempts: _attempts, ...summary } = toView(withDefaults({ ...row.state, attempts: [] }));
      return summary;
    }),
    next: rows.length > filter.limit && last !== undefined ? { createdAt: last.position, id: last.id } : null,
  };
}

/** A schedule's latest runs, newest first: what its `recentRuns` shows. */
export async function findScheduleRuns(
  db: DbOrTx,
  tenantId: string,
  scheduleId: string,
  limit: number,
): Promise<{ scheduledAt: string; serviceCallId: string }[]> {
  const rows = await db
    .select({ id: serviceCalls.id, state: serviceCalls.state })
    .from(serviceCalls)
    .where(and(eq(serviceCalls.tenantId, tenantId), eq(serviceCalls.scheduleId, scheduleId)))
    .orderBy(desc(serviceCalls.createdAt), desc(serviceCalls.id))
    .limit(limit);
  return rows.map((r) => ({ scheduledAt: r.state.scheduledAt ?? r.state.dueAt, serviceCallId: r.id }));
}
