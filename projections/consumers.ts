import type { PgTable } from 'drizzle-orm/pg-core';
import type { Gauge } from 'prom-client';
import * as schema from '../drizzle/schema';
import type { DbOrTx } from '../core/db';
import type { StoredEvent } from '../core/events';
import type { Logger } from '../core/logger';
import { outboxBacklog } from '../core/metrics';
import type { LogConsumer } from './relay';
import { createScheduleSyncer, SCHEDULE_SYNCER_NAME } from './schedule-syncer';
import { applyScheduleEvents, SCHEDULES_PROJECTION, schedulesProjection } from './schedules';
import { applyEvents, createServiceCallsProjection, PROJECTION_NAME } from './service-calls';
import { createWorkflowStarter, STARTER_NAME, type StartTarget } from './workflow-starter';

/**
 * Every consumer of the event log, in one list: the relay runs each (bin/roles.ts), the lag
 * watch measures each (projections/lag.ts), and the rebuild offers those that own a read model
 * (projections/rebuild.ts). A new consumer is one entry here.
 */

/** What a consumer may need to be built: the relay's logger and where workflows start. */
interface ConsumerContext {
  log: Logger;
  start: StartTarget;
}

export interface ConsumerDefinition {
  /** Its checkpoint row, the advisory lock its batches run under, and its lag metrics' label. */
  name: string;
  create(ctx: ConsumerContext): LogConsumer;
  /** Present when the consumer only writes a read model, which can then be rebuilt from the log. */
  rebuild?: {
    /** The read-model table, as `apply` writes it (unqualified). */
    table: PgTable;
    apply(tx: DbOrTx, batch: readonly StoredEvent[]): Promise<unknown>;
  };
  /** A gauge of its own, set to its lag in events beside punctual_consumer_lag_events. */
  lagGauge?: Gauge;
}

export const CONSUMERS: readonly ConsumerDefinition[] = [
  {
    name: PROJECTION_NAME,
    create: ({ log }) => createServiceCallsProjection(log),
    rebuild: { table: schema.serviceCalls, apply: applyEvents },
  },
  {
    name: STARTER_NAME,
    create: ({ log, start }) => createWorkflowStarter({ ...start, log }),
    // The starter is what hands submits and cancels to Temporal: its lag is the outbox backlog.
    lagGauge: outboxBacklog,
  },
  {
    name: SCHEDULES_PROJECTION,
    create: () => schedulesProjection,
    rebuild: { table: schema.schedules, apply: applyScheduleEvents },
  },
  {
    // Derives each schedule's Temporal Schedule from its stream (ADR-0017).
    name: SCHEDULE_SYNCER_NAME,
    create: ({ log, start }) => createScheduleSyncer({ client: start.client, taskQueue: start.taskQueue, log }),
  },
];
