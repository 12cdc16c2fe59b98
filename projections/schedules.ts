import { and, eq, getTableColumns, ne, sql, type SQL } from 'drizzle-orm';
import { schedules, type ScheduleRow } from '../drizzle/schema';
import type { DbOrTx } from '../core/db';
import type { AnyEvent } from '../core/events';
import {
  evolveSchedule,
  SCHEDULE_AGGREGATE_TYPE,
  type ScheduleEvent,
  type ScheduleState,
  type ScheduleStatus,
} from '../core/schedule';
import { redactHeaders } from '../core/redact';
import type { LogConsumer } from './relay';

/**
 * The schedules read model (ADR-0017): its table, the function that applies events to it and the
 * queries the API serves from it. Schedule commands apply their own events in their transaction
 * (the limit per tenant counts rows, and a created schedule is listed at once); the projection
 * applies the same events again from the log, which changes nothing, and rebuilds the table.
 */

export const SCHEDULES_PROJECTION = 'schedules';

function isScheduleEvent(event: AnyEvent): event is ScheduleEvent & AnyEvent {
  return event.aggregateType === SCHEDULE_AGGREGATE_TYPE;
}

function stateToRow(state: ScheduleState): typeof schedules.$inferInsert {
  const request = state.run.request;
  return {
    tenantId: state.tenantId,
    id: state.id,
    state: { ...state, run: { ...state.run, request: { ...request, headers: redactHeaders(request.headers) } } },
    status: state.status,
    tags: state.run.tags,
    createdAt: new Date(state.createdAt),
    version: state.version,
  };
}

const UPSERT_SET = Object.fromEntries(
  Object.entries(getTableColumns(schedules))
    .filter(([name]) => name !== 'tenantId' && name !== 'id')
    .map(([name, column]) => [name, sql.raw(`excluded.${column.name}`)]),
);

/**
 * Folds a batch's schedule events into the rows they touch and upserts them; events at or below
 * a row's version are skipped and a row only moves forward, so applying a batch twice is harmless.
 * Other aggregates' events are ignored.
 */
export async function applyScheduleEvents(tx: DbOrTx, batch: readonly AnyEvent[]): Promise<number> {
  const events = batch.filter(isScheduleEvent);
  if (events.length === 0) return 0;
  const keyOf = (tenantId: string, id: string) => `${tenantId}/${id}`;
  const keys = new Map(events.map((e) => [keyOf(e.tenantId, e.aggregateId), e]));
  const existing = await tx
    .select()
    .from(schedules)
    .where(
      sql`(${schedules.tenantId}, ${schedules.id}) in (${sql.join(
        [...keys.values()].map((e) => sql`(${e.tenantId}, ${e.aggregateId}::uuid)`),
        sql`, `,
      )})`,
    );
  const states = new Map<string, ScheduleState>();
  for (const row of existing) states.set(keyOf(row.tenantId, row.id), { ...row.state, version: row.version });
  const touched = new Set<string>();
  for (const event of events) {
    const key = keyOf(event.tenantId, event.aggregateId);
    const state = states.get(key);
    if (state !== undefined && event.version <= state.version) continue;
    states.set(key, evolveSchedule(state, event));
    touched.add(key);
  }
  if (touched.size === 0) return 0;
  await tx
    .insert(schedules)
    .values([...touched].map((k) => stateToRow(states.get(k)!)))
    .onConflictDoUpdate({
      target: [schedules.tenantId, schedules.id],
      set: UPSERT_SET,
      setWhere: sql`${schedules.version} < excluded.version`,
    });
  return touched.size;
}

export const schedulesProjection: LogConsumer = {
  name: SCHEDULES_PROJECTION,
  transactional: true,
  async handle(batch, tx) {
    await applyScheduleEvents(tx, batch);
  },
};

/** A live (not deleted) schedule of this tenant, redacted as the API shows it. */
export async function findSchedule(db: DbOrTx, tenantId: string, id: string): Promise<ScheduleState | undefined> {
  const [row] = await db
    .select()
    .from(schedules)
    .where(and(eq(schedules.tenantId, tenantId), eq(schedules.id, id), ne(schedules.status, 'Deleted')));
  return row === undefined ? undefined : rowState(row);
}

function rowState(row: ScheduleRow): ScheduleState {
  return { ...row.state, version: row.version };
}

/** How many schedules the tenant holds (deleted ones not counted): what SCHEDULES_PER_TENANT limits. */
export async function countSchedules(db: DbOrTx, tenantId: string): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(schedules)
    .where(and(eq(schedules.tenantId, tenantId), ne(schedules.status, 'Deleted')));
  return row?.n ?? 0;
}

export interface ScheduleListFilter {
  /** Any of these shown statuses (Ended: endAt has passed); empty means every one. */
  statuses: readonly ScheduleStatus[];
  /** Every one of these tags. */
  tags: readonly string[];
  limit: number;
  after?: { createdAt: string; id: string };
}

interface ScheduleListRow extends Record<string, unknown> {
  id: string;
  state: ScheduleState;
  version: number;
  position: string;
}

const POSITION_TEXT = sql`to_char(${schedules.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** One page of a tenant's schedules, newest first (createdAt, id), keyset-paged like the call list. */
export async function listSchedules(
  db: DbOrTx,
  tenantId: string,
  filter: ScheduleListFilter,
  now: Date,
): Promise<{ items: ScheduleState[]; next: { createdAt: string; id: string } | null }> {
  const at = sql`${now.toISOString()}::timestamptz`;
  // endAt lives in the document: a schedule has Ended once it has passed.
  const endAt = sql`(${schedules.state} -> 'spec' ->> 'endAt')::timestamptz`;
  const running = sql`(${endAt} is null or ${endAt} > ${at})`;
  const shown: Record<ScheduleStatus, SQL> = {
    Active: sql`(${schedules.status} = 'Active' and ${running})`,
    Paused: sql`(${schedules.status} = 'Paused' and ${running})`,
    Ended: sql`(${schedules.status} <> 'Deleted' and ${endAt} <= ${at})`,
  };
  const statuses = filter.statuses.length === 0 ? null : [...new Set(filter.statuses)];
  const where: SQL[] = [
    sql`${schedules.tenantId} = ${tenantId}`,
    sql`${schedules.status} <> 'Deleted'`,
    ...(statuses === null
      ? []
      : [
          sql`(${sql.join(
            statuses.map((s) => shown[s]),
            sql` or `,
          )})`,
        ]),
  ];
  if (filter.tags.length > 0) {
    where.push(
      sql`${schedules.tags} @> array[${sql.join(
        filter.tags.map((t) => sql`${t}`),
        sql`, `,
      )}]::text[]`,
    );
  }
  if (filter.after !== undefined) {
    where.push(
      sql`(${schedules.createdAt}, ${schedules.id}) < (${filter.after.createdAt}::timestamptz, ${filter.after.id}::uuid)`,
    );
  }
  const { rows } = await db.execute<ScheduleListRow>(sql`
    select ${schedules.id} as id, ${schedules.state} as state, ${schedules.version} as version,
      ${POSITION_TEXT} as position
    from ${schedules}
    where ${sql.join(where, sql` and `)}
    order by ${schedules.createdAt} desc, ${schedules.id} desc
    limit ${filter.limit + 1}`);
  const page = rows.slice(0, filter.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({ ...r.state, version: r.version })),
    next: rows.length > filter.limit && last !== undefined ? { createdAt: last.position, id: last.id } : null,
  };
}
