import { and, eq, sql } from 'drizzle-orm';
import { serviceCalls, type ServiceCallRow } from '../drizzle/schema';
import type { DbOrTx } from '../core/db';
import type { AttemptRecord, CallResult, HttpMethod, StoredEvent } from '../core/events';
import { redactHeaders } from '../core/redact';
import { evolve, type ServiceCallState, type Status } from '../core/service-call';
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
  createdAt: string;
  updatedAt: string;
  attempts: AttemptRecord[];
  result: CallResult | null;
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
    createdAt: state.createdAt,
    updatedAt: state.updatedAt,
    attempts: state.attempts,
    result: state.result,
  };
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
      body: null,
    },
    dueAt: row.dueAt.toISOString(),
    tags: row.tags,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    attempts: row.attempts as AttemptRecord[],
    result: row.result as CallResult | null,
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
    createdAt: new Date(state.createdAt),
    updatedAt: new Date(state.updatedAt),
    attempts: state.attempts,
    result: state.result,
    version: state.version,
  };
}

/**
 * Applies a batch: loads the rows it touches in one query, folds the new events into them and
 * upserts them in one statement. Events at or below a row's version were applied already and
 * are skipped, and the upsert only moves a row forward, so a replayed batch changes nothing.
 */
export async function applyEvents(tx: DbOrTx, batch: readonly StoredEvent[]): Promise<number> {
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
  const touched = new Set<string>();
  for (const event of batch) {
    const key = keyOf(event.tenantId, event.aggregateId);
    const state = states.get(key);
    if (state !== undefined && event.version <= state.version) continue;
    states.set(key, evolve(state, event));
    touched.add(key);
  }
  if (touched.size === 0) return 0;
  const rows = [...touched].map((k) => stateToRow(states.get(k)!));
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
        version: sql`excluded.version`,
      },
      setWhere: sql`${serviceCalls.version} < excluded.version`,
    });
  return rows.length;
}

export const serviceCallsProjection: LogConsumer = {
  name: PROJECTION_NAME,
  transactional: true,
  async handle(batch, tx) {
    await applyEvents(tx, batch);
  },
};

export async function findServiceCall(
  db: DbOrTx,
  tenantId: string,
  id: string,
): Promise<ServiceCallState | undefined> {
  const [row] = await db
    .select()
    .from(serviceCalls)
    .where(and(eq(serviceCalls.tenantId, tenantId), eq(serviceCalls.id, id)));
  return row === undefined ? undefined : rowToState(row);
}
