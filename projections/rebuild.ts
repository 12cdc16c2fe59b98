import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import pg from 'pg';
import * as schema from '../drizzle/schema';
import type { Db, DbOrTx } from '../core/db';
import { pgErrorOf } from '../core/db';
import { LOG_START, readLogAfter, type LogPosition } from '../core/event-store';
import type { StoredEvent } from '../core/events';
import { consumerLockName, saveCheckpoint } from './relay';
import { CONSUMERS } from './consumers';

/**
 * Rebuilds a read model from the event store while the service runs (ADR-0007), with no downtime
 * for reads:
 *
 * 1. a shadow table `punctual_rebuild.<table>` is made `LIKE <table> INCLUDING ALL` (same
 *    columns, constraints and indexes) and filled from the start of the log, batch by batch, by
 *    the projection's own apply function: each batch runs with `punctual_rebuild` first on the
 *    search_path, so the apply function's unqualified table name lands in the shadow. Readers
 *    keep using the live table, which the live consumer keeps up to date meanwhile;
 * 2. one short transaction takes the live consumer's advisory lock (it skips its turn while we
 *    hold it), applies what the log gained since, swaps the tables by renaming them, gives the
 *    shadow's indexes the live indexes' names, and moves the consumer's checkpoint to the
 *    shadow's position. The live consumer carries on from there, into the new table.
 *
 * Readers wait only for that last transaction (milliseconds: the DDL is catalog-only), behind a
 * lock_timeout so a long-running reader delays the swap instead of queueing every reader behind
 * it. Log batches are short transactions because an open writing transaction holds back every
 * log reader (they stop below the oldest running transaction).
 */

const REBUILD_SCHEMA = 'punctual_rebuild';

interface RebuildableProjection {
  /** Consumer name: its checkpoint row and the advisory lock its batches run under. */
  name: string;
  /** The read-model table, as the apply function writes it (unqualified). */
  table: PgTable;
  apply(tx: DbOrTx, batch: readonly StoredEvent[]): Promise<unknown>;
}

/** The consumers of the registry (projections/consumers.ts) that own a read model. */
export const REBUILDABLE_PROJECTIONS: readonly RebuildableProjection[] = CONSUMERS.flatMap((c) =>
  c.rebuild === undefined ? [] : [{ name: c.name, ...c.rebuild }],
);

interface RebuildProgress {
  projection: string;
  phase: 'build' | 'swap';
  /** Events applied to the shadow so far. */
  events: number;
  position: LogPosition;
}

interface RebuildOptions {
  /** Events per build batch (one short transaction each). Default 2000. */
  batchSize?: number;
  /** How long the swap waits for a lock before it gives way to readers and tries again. */
  lockTimeoutMs?: number;
  swapAttempts?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Called after every build batch; tests use it to interleave live traffic. */
  onProgress?: (progress: RebuildProgress) => Promise<void> | void;
}

interface RebuildResult {
  projection: string;
  /** Events applied to the new table. */
  events: number;
  rows: number;
  /** The log position the new table and the moved checkpoint stand at. */
  position: LogPosition;
  durationMs: number;
  /** How long the swap transaction held the tables. */
  swapMs: number;
}

export class RebuildError extends Error {
  override name = 'RebuildError';
}

const ident = (name: string): string => pg.escapeIdentifier(name);

interface IndexInfo {
  name: string;
  /** The definition with its own name and its table left out: equal for twin indexes. */
  shape: string;
}

async function indexesOf(tx: DbOrTx, relation: string): Promise<IndexInfo[]> {
  const { rows } = await tx.execute<{ name: string; shape: string }>(sql`
    select c.relname as name,
           regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX .+? ON (ONLY )?\\S+ USING ', 'CREATE \\1INDEX USING ') as shape
    from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid = ${relation}::regclass
    order by c.relname`);
  return rows;
}

async function columnsOf(tx: DbOrTx, relation: string): Promise<string[]> {
  const { rows } = await tx.execute<{ col: string }>(sql`
    select attname || ' ' || format_type(atttypid, atttypmod) || case when attnotnull then ' not null' else '' end as col
    from pg_attribute where attrelid = ${relation}::regclass and attnum > 0 and not attisdropped
    order by attnum`);
  return rows.map((r) => r.col);
}

/**
 * What a rename swap would silently lose: objects attached to the live table that `LIKE …
 * INCLUDING ALL` does not copy. None exist today; this refuses rather than drop them.
 */
async function unsupportedDependents(tx: DbOrTx, relation: string): Promise<string[]> {
  const { rows } = await tx.execute<{ what: string; n: number }>(sql`
    select 'row-level security policies' as what,
           (select count(*) from pg_policy where polrelid = ${relation}::regclass)::int
             + (select case when relrowsecurity then 1 else 0 end from pg_class where oid = ${relation}::regclass) as n
    union all
    select 'triggers', (select count(*) from pg_trigger where tgrelid = ${relation}::regclass and not tgisinternal)::int
    union all
    select 'views or rules', (select count(*) from pg_depend d join pg_rewrite r on r.oid = d.objid
                              where d.classid = 'pg_rewrite'::regclass and d.refobjid = ${relation}::regclass
                                and r.ev_class <> ${relation}::regclass)::int
    union all
    select 'foreign keys referencing it', (select count(*) from pg_constraint where confrelid = ${relation}::regclass)::int`);
  return rows.filter((r) => r.n > 0).map((r) => r.what);
}

/** Applies the log after `from` to the shadow, in the current transaction; returns the new position. */
async function applyRange(
  tx: DbOrTx,
  projection: RebuildableProjection,
  from: LogPosition,
  limit: number,
): Promise<{ position: LogPosition; applied: number }> {
  const batch = await readLogAfter(tx, from, limit);
  const last = batch[batch.length - 1];
  if (last === undefined) return { position: from, applied: 0 };
  await projection.apply(tx, batch);
  return { position: { tx: last.tx, globalPosition: last.globalPosition }, applied: batch.length };
}

async function useShadowFirst(tx: DbOrTx, searchPath: string): Promise<void> {
  await tx.execute(sql`select set_config('search_path', ${`${ident(REBUILD_SCHEMA)}, ${searchPath}`}, true)`);
}

/**
 * Rebuilds one projection's table from the event store and swaps it in; see the module comment.
 * Runs on a connection of its own; a second concurrent rebuild of the same projection is refused.
 */
export async function rebuildProjection(
  databaseUrl: string,
  projection: RebuildableProjection,
  opts: RebuildOptions = {},
): Promise<RebuildResult> {
  const started = Date.now();
  const batchSize = opts.batchSize ?? 2000;
  const lockTimeoutMs = opts.lockTimeoutMs ?? 2000;
  const swapAttempts = opts.swapAttempts ?? 20;
  const log = opts.log ?? (() => undefined);
  const tableConfig = getTableConfig(projection.table);
  if (tableConfig.schema !== undefined) {
    // The shadow is reached through the search_path; a schema-qualified table would bypass it.
    throw new RebuildError(`${projection.name}: table ${tableConfig.schema}.${tableConfig.name} is schema-qualified`);
  }
  const table = tableConfig.name;

  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'punctual-rebuild' });
  client.on('error', () => undefined); // a lost connection fails the pending query; that is enough
  await client.connect();
  const db: Db = drizzle(client, { schema });
  const rebuildLock = `punctual-rebuild:${projection.name}`;
  let locked = false;
  try {
    const got = await db.execute<{ ok: boolean }>(sql`select pg_try_advisory_lock(hashtext(${rebuildLock})) as ok`);
    if (got.rows[0]?.ok !== true) throw new RebuildError(`another rebuild of ${projection.name} is running`);
    locked = true;

    const { rows: found } = await db.execute<{ schema: string | null; search_path: string }>(sql`
      select (select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where c.oid = to_regclass(${ident(table)})) as schema,
             current_setting('search_path') as search_path`);
    const liveSchema = found[0]?.schema ?? null;
    const searchPath = found[0]?.search_path ?? 'public';
    if (liveSchema === null) throw new RebuildError(`table ${table} does not exist; apply the migrations first`);
    if (liveSchema === REBUILD_SCHEMA) throw new RebuildError(`the search_path puts ${REBUILD_SCHEMA} first`);
    const live = `${ident(liveSchema)}.${ident(table)}`;
    const shadow = `${ident(REBUILD_SCHEMA)}.${ident(table)}`;
    const next = `${ident(REBUILD_SCHEMA)}.${ident(`${table}_next`)}`;
    const replaced = `${ident(REBUILD_SCHEMA)}.${ident(`${table}_replaced`)}`;

    // A fresh shadow each time: whatever an interrupted rebuild left is thrown away.
    await db.execute(sql.raw(`create schema if not exists ${ident(REBUILD_SCHEMA)}`));
    await db.execute(sql.raw(`drop table if exists ${shadow}, ${next}, ${replaced}`));
    await db.execute(sql.raw(`create table ${shadow} (like ${live} including all)`));
    // Temporary index names that cannot collide with the live ones when both sit in one schema.
    const shadowIndexes = await indexesOf(db, shadow);
    for (const [i, index] of shadowIndexes.entries()) {
      await db.execute(
        sql.raw(`alter index ${ident(REBUILD_SCHEMA)}.${ident(index.name)} rename to ${ident(`rb_${table}_${i}`)}`),
      );
    }
    log('rebuild: shadow table created', { projection: projection.name, shadow: `${REBUILD_SCHEMA}.${table}` });

    let position = LOG_START;
    let events = 0;
    for (;;) {
      const step = await db.transaction(async (tx) => {
        await useShadowFirst(tx, searchPath);
        return applyRange(tx, projection, position, batchSize);
      });
      position = step.position;
      events += step.applied;
      await opts.onProgress?.({ projection: projection.name, phase: 'build', events, position });
      if (step.applied < batchSize) break;
    }
    log('rebuild: shadow caught up with the log', { projection: projection.name, events, position });
    // Fresh statistics before readers use it; dead tuples from rows updated across batches go.
    await db.execute(sql.raw(`vacuum (analyze) ${shadow}`));

    for (let attempt = 1; ; attempt++) {
      const swapStarted = Date.now();
      try {
        const swapped = await db.transaction(async (tx) => {
          await tx.execute(sql`select set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`);
          // The live consumer tries this lock without waiting: it skips its turns until we commit.
          await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${consumerLockName(projection.name)}))`);
          await useShadowFirst(tx, searchPath);
          let at = position;
          let applied = 0;
          for (;;) {
            const step = await applyRange(tx, projection, at, batchSize);
            at = step.position;
            applied += step.applied;
            if (step.applied === 0) break;
          }
          await tx.execute(sql`select set_config('search_path', ${searchPath}, true)`);

          const [liveColumns, shadowColumns] = [await columnsOf(tx, live), await columnsOf(tx, shadow)];
          if (JSON.stringify(liveColumns) !== JSON.stringify(shadowColumns)) {
            throw new RebuildError(
              `${live} changed shape during the rebuild (a migration ran?); run the rebuild again`,
            );
          }
          const lost = await unsupportedDependents(tx, live);
          if (lost.length > 0) {
            throw new RebuildError(
              `${live} has ${lost.join(', ')}, which the swap would drop; teach projections/rebuild.ts to copy them`,
            );
          }
          // Pair every live index with its twin in the shadow, to hand its name over.
          const liveIndexes = await indexesOf(tx, live);
          const unpaired = await indexesOf(tx, shadow);
          const renames: { from: string; to: string }[] = [];
          for (const index of liveIndexes) {
            const twin = unpaired.findIndex((s) => s.shape === index.shape);
            if (twin < 0) {
              throw new RebuildError(`${live} gained index ${index.name} during the rebuild; run the rebuild again`);
            }
            renames.push({ from: unpaired[twin]!.name, to: index.name });
            unpaired.splice(twin, 1);
          }
          if (unpaired.length > 0) {
            throw new RebuildError(`${live} lost an index during the rebuild; run the rebuild again`);
          }
          const { rows: access } = await tx.execute<{ owner: string; acl: string[] | null }>(sql`
            select pg_get_userbyid(relowner) as owner, relacl::text[] as acl from pg_class where oid = ${live}::regclass`);

          await tx.execute(sql.raw(`alter table ${shadow} rename to ${ident(`${table}_next`)}`));
          await tx.execute(sql.raw(`alter table ${live} rename to ${ident(`${table}_replaced`)}`));
          await tx.execute(
            sql.raw(
              `alter table ${ident(liveSchema)}.${ident(`${table}_replaced`)} set schema ${ident(REBUILD_SCHEMA)}`,
            ),
          );
          await tx.execute(sql.raw(`alter table ${next} set schema ${ident(liveSchema)}`));
          await tx.execute(
            sql.raw(`alter table ${ident(liveSchema)}.${ident(`${table}_next`)} rename to ${ident(table)}`),
          );
          for (const { from, to } of renames) {
            await tx.execute(sql.raw(`alter index ${ident(liveSchema)}.${ident(from)} rename to ${ident(to)}`));
          }
          const owner = access[0]?.owner;
          if (owner !== undefined) await tx.execute(sql.raw(`alter table ${live} owner to ${ident(owner)}`));
          if (access[0]?.acl != null) {
            // Grants are not copied by LIKE: restate each one (the owner's own came with OWNER TO).
            const { rows: grants } = await tx.execute<{ grantee: string; privilege: string; grantable: boolean }>(sql`
              select case when a.grantee = 0 then 'PUBLIC' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee,
                     a.privilege_type as privilege, a.is_grantable as grantable
              from pg_class c, aclexplode(c.relacl) a
              where c.oid = ${`${REBUILD_SCHEMA}.${table}_replaced`}::regclass and a.grantee <> c.relowner`);
            for (const g of grants) {
              await tx.execute(
                sql.raw(`grant ${g.privilege} on ${live} to ${g.grantee}${g.grantable ? ' with grant option' : ''}`),
              );
            }
          }
          await tx.execute(sql.raw(`drop table ${replaced}`));
          await saveCheckpoint(tx, projection.name, at);
          return { at, applied };
        });
        position = swapped.at;
        events += swapped.applied;
        const swapMs = Date.now() - swapStarted;
        const { rows: counted } = await db.execute<{ n: number }>(sql.raw(`select count(*)::int as n from ${live}`));
        const result: RebuildResult = {
          projection: projection.name,
          events,
          rows: counted[0]?.n ?? 0,
          position,
          durationMs: Date.now() - started,
          swapMs,
        };
        log('rebuild: swapped in the rebuilt table', { ...result });
        return result;
      } catch (err) {
        // 55P03 lock_not_available: a reader or the live consumer held on; let them go, retry.
        if (pgErrorOf(err)?.code !== '55P03' || attempt >= swapAttempts) throw err;
        log('rebuild: swap waited too long for a lock; retrying', { projection: projection.name, attempt });
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * attempt)));
      }
    }
  } finally {
    if (locked) await db.execute(sql`select pg_advisory_unlock(hashtext(${rebuildLock}))`).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
