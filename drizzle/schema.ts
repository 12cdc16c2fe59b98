import { sql } from 'drizzle-orm';
import {
  bigint,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import type { ScheduleState } from '../core/schedule';
import type { ServiceCallState } from '../core/service-call';

/**
 * Postgres `xid8`: the 64-bit id of the transaction that wrote a row. Readers compare it with
 * `pg_snapshot_xmin(pg_current_snapshot())` to read the event log gap-free (ADR-0004). Kept as a
 * decimal string because it does not fit a JS number safely.
 */
const xid8 = customType<{ data: string; driverData: string }>({
  dataType: () => 'xid8',
});

/** Append-only event store: the source of truth (ADR-0002). */
export const events = pgTable(
  'events',
  {
    /** Commit-independent sequence; order readers by (tx, globalPosition), never by this alone. */
    globalPosition: bigint('global_position', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** `${tenantId}/${aggregateId}`: one stream per service call. */
    streamId: text('stream_id').notNull(),
    /** 1-based position inside the stream; optimistic concurrency hinges on its uniqueness. */
    version: integer('version').notNull(),
    /** Deterministic for events written by activities, so a retried append is a no-op. */
    messageId: uuid('message_id').notNull().unique('events_message_id_key'),
    tenantId: text('tenant_id').notNull(),
    aggregateType: text('aggregate_type').notNull(),
    aggregateId: uuid('aggregate_id').notNull(),
    type: text('type').notNull(),
    schemaVersion: integer('schema_version').notNull(),
    data: jsonb('data').notNull(),
    correlationId: text('correlation_id').notNull(),
    causationId: text('causation_id'),
    timestamp: timestamp('timestamp', { withTimezone: true, mode: 'date' }).notNull(),
    tx: xid8('tx')
      .notNull()
      .default(sql`pg_current_xact_id()`),
  },
  (t) => [
    unique('events_stream_version_key').on(t.streamId, t.version),
    index('events_tx_position_idx').on(t.tx, t.globalPosition),
  ],
);
export type EventRow = typeof events.$inferSelect;

/** Idempotency records (ADR-0005): kept in Postgres because Temporal forgets workflow ids. */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    tenantId: text('tenant_id').notNull(),
    key: text('key').notNull(),
    serviceCallId: uuid('service_call_id').notNull(),
    /** HMAC-SHA256 (keyed by ENCRYPTION_KEY) of the canonical submitted command; a different one → 422. */
    fingerprint: text('fingerprint').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] })],
);
export type IdempotencyKeyRow = typeof idempotencyKeys.$inferSelect;

/** Per-consumer position in the event log, as the (tx, globalPosition) pair last handled. */
export const consumerCheckpoints = pgTable('consumer_checkpoints', {
  name: text('name').primaryKey(),
  tx: xid8('tx').notNull(),
  globalPosition: bigint('global_position', { mode: 'number' }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

export const tenants = pgTable('tenants', {
  id: text('id').primaryKey(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    /** sha256 (hex) of the whole key; the key itself is never stored. */
    keyHash: text('key_hash').notNull().unique('api_keys_key_hash_key'),
    /**
     * The key's id (`key_` + 10 hex digits of its hash, core/api-keys.ts). Rows made before key
     * ids hold the key's first 12 characters instead; nothing shows or reads them any more.
     */
    prefix: text('prefix').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('api_keys_tenant_idx').on(t.tenantId),
    /** Kept from when `tenants keys revoke <prefix>` found keys by it. */
    index('api_keys_prefix_idx').on(t.prefix),
  ],
);
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/**
 * Read model of service calls, built by the service-calls projection (ADR-0007): the call as one
 * document (`state`), beside copies of the few fields the list filters or sorts on and of the
 * version the upsert compares. A new field of a call lives in the document alone.
 */
export const serviceCalls = pgTable(
  'service_calls',
  {
    tenantId: text('tenant_id').notNull(),
    id: uuid('id').notNull(),
    /** The folded state, with sensitive header values already redacted (ADR-0008); no request body. */
    state: jsonb('state').$type<ServiceCallState>().notNull(),
    status: text('status').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true, mode: 'date' }).notNull(),
    tags: text('tags').array().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** The finished call this one replays (POST …/replay); null for a call submitted directly. */
    replayOf: uuid('replay_of'),
    /** The callback's status (Pending, Delivered, Failed, NotRequired); null without a callback. */
    callbackStatus: text('callback_status'),
    /** The schedule whose run this call is (ADR-0017); null for a call submitted directly. */
    scheduleId: uuid('schedule_id'),
    /** Stream version last applied; an upsert only moves it forward, so replays are harmless. */
    version: integer('version').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    // The list endpoint (newest first, keyset on (createdAt, id)) reads these; see bench/README.md.
    /** Unfiltered and time-window lists: the keyset order itself. */
    index('service_calls_tenant_created_idx').on(t.tenantId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    /** Status filters, one index range per requested status, already in list order. */
    index('service_calls_tenant_status_created_idx').on(
      t.tenantId,
      t.status,
      t.createdAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    /** Tag filters (`tags @> …`), for tags too rare to find by walking the list order. */
    index('service_calls_tags_idx').using('gin', t.tags),
    /** A call's replays (its detail's `replays`, the list's `replayOf` filter). */
    index('service_calls_tenant_replay_of_idx')
      .on(t.tenantId, t.replayOf)
      .where(sql`replay_of is not null`),
    /** dueAfter/dueBefore windows narrower than the list order would find quickly. */
    index('service_calls_tenant_due_idx').on(t.tenantId, t.dueAt),
    /** The list's `callbackStatus` filter (above all `Failed`: the callbacks that gave up), in list order. */
    index('service_calls_tenant_callback_created_idx')
      .on(t.tenantId, t.callbackStatus, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(sql`callback_status is not null`),
    /** A schedule's runs (the list's `scheduleId` filter, a schedule's `recentRuns`), in list order. */
    index('service_calls_tenant_schedule_created_idx')
      .on(t.tenantId, t.scheduleId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(sql`schedule_id is not null`),
    /**
     * The reconciler's keyset walk over calls that must have a live workflow (ADR-0013, ADR-0016):
     * unfinished, or finished with a callback still to deliver. Partial, so its size follows
     * those calls, not the whole history.
     */
    index('service_calls_live_idx')
      .on(t.tenantId, t.id)
      .where(sql`status in ('Scheduled', 'Running') or callback_status = 'Pending'`),
  ],
);
export type ServiceCallRow = typeof serviceCalls.$inferSelect;

/**
 * Per-tenant secrets for Standard Webhooks request signing. Sealed at rest; every secret that has
 * not expired signs, so a rotation keeps the old one valid for a grace period.
 */
export const signingSecrets = pgTable(
  'signing_secrets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    /** The `whsec_…` secret sealed with ENCRYPTION_KEY (context: tenant id). */
    secret: jsonb('secret').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** Set when a newer secret replaces this one; it stops signing after this instant. */
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('signing_secrets_tenant_idx').on(t.tenantId, t.createdAt)],
);

/**
 * Read model of schedules (ADR-0017), written in the transaction of each schedule command (so the
 * per-tenant limit counts exactly and a created schedule lists at once) and by the schedules
 * projection, which can rebuild it; both upserts only move a row forward by stream version.
 */
export const schedules = pgTable(
  'schedules',
  {
    tenantId: text('tenant_id').notNull(),
    id: uuid('id').notNull(),
    /** The folded state, request headers redacted; the sealed secrets stay in the event store. */
    state: jsonb('state').$type<ScheduleState>().notNull(),
    /** Active, Paused or Deleted (a deleted schedule keeps its row, so an old event cannot bring it back). */
    status: text('status').notNull(),
    tags: text('tags').array().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    version: integer('version').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    /** The list (newest first, keyset on (createdAt, id)), with or without a status filter. */
    index('schedules_tenant_status_created_idx').on(
      t.tenantId,
      t.status,
      t.createdAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    index('schedules_tags_idx').using('gin', t.tags),
  ],
);
export type ScheduleRow = typeof schedules.$inferSelect;

/**
 * A tenant's flow limits (ADR-0018), one row per key: a token bucket (rate) and a cap on attempts
 * in flight (concurrency), either or both. The bucket's state lives in the row, updated while the
 * row is locked (`FOR UPDATE`) by the worker admitting an attempt, so every worker shares it.
 */
export const flowLimits = pgTable(
  'flow_limits',
  {
    tenantId: text('tenant_id').notNull(),
    key: text('key').notNull(),
    /** Attempts per second on average; null: no rate limit. */
    ratePerSecond: doublePrecision('rate_per_second'),
    /** Attempts at once after a quiet spell (the bucket's size); null with no rate limit. */
    burst: integer('burst'),
    /** Attempts in flight at once across all workers; null: no concurrency limit. */
    concurrency: integer('concurrency'),
    /** Tokens in the bucket at `refilledAt`; refilled lazily from the elapsed time. */
    tokens: doublePrecision('tokens').notNull().default(0),
    refilledAt: timestamp('refilled_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /**
     * The last send slot handed to a call the rate refused (its reservation); while it is ahead,
     * a call without a reservation queues behind it instead of taking a token.
     */
    reservedUntil: timestamp('reserved_until', { withTimezone: true, mode: 'date' }),
    /** Moving average of how long a lease is held (ms): the wait suggested to a call refused by concurrency. */
    holdMs: doublePrecision('hold_ms'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] })],
);
export type FlowLimitRow = typeof flowLimits.$inferSelect;

/**
 * Attempts in flight under a concurrency limit, one row per (key, call). A lease that is not
 * renewed (its worker died) stops counting at `expiresAt` (FLOW_LEASE_TTL_MS after its last renewal).
 */
export const flowLeases = pgTable(
  'flow_leases',
  {
    tenantId: text('tenant_id').notNull(),
    key: text('key').notNull(),
    serviceCallId: uuid('service_call_id').notNull(),
    acquiredAt: timestamp('acquired_at', { withTimezone: true, mode: 'date' }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.key, t.serviceCallId] }),
    /** Releasing a call's leases, renewing them, and the detail of a call. */
    index('flow_leases_call_idx').on(t.tenantId, t.serviceCallId),
  ],
);

/**
 * Calls refused by a key's limit, waiting to ask again: admission lets the oldest dueAt go first.
 * A waiter that does not come back by `expiresAt` (its workflow is gone) no longer holds others back.
 */
export const flowWaiting = pgTable(
  'flow_waiting',
  {
    tenantId: text('tenant_id').notNull(),
    key: text('key').notNull(),
    serviceCallId: uuid('service_call_id').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** When the call was first refused (its attempt's throttle starts here). */
    since: timestamp('since', { withTimezone: true, mode: 'date' }).notNull(),
    /** When the call will ask again: until then it does not hold back calls younger than it. */
    wakeAt: timestamp('wake_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** The send slot the rate reserved for this call (a rate key only); null: no reservation. */
    slotAt: timestamp('slot_at', { withTimezone: true, mode: 'date' }),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.key, t.serviceCallId] }),
    /** Who is ahead: the key's waiters in dueAt order. */
    index('flow_waiting_order_idx').on(t.tenantId, t.key, t.dueAt, t.serviceCallId),
    /** A call's own waits (its detail's waitingFor, its admission). */
    index('flow_waiting_call_idx').on(t.tenantId, t.serviceCallId),
  ],
);
