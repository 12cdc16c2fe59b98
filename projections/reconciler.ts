import { ScheduleNotFoundError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { sql } from 'drizzle-orm';
import type { Db, DbOrTx } from '../core/db';
import type { ServiceCallSubmitted, StoredEvent } from '../core/events';
import { readFirstEvents, readStream, type LogPosition } from '../core/event-store';
import { streamIdFor, temporalScheduleIdFor, workflowIdFor } from '../core/ids';
import type { Logger } from '../core/logger';
import {
  reconcilerCallsChecked,
  reconcilerPassDuration,
  reconcilerSchedulesRestored,
  reconcilerWorkflowsRestarted,
} from '../core/metrics';
import { readSchedule } from '../core/schedule-commands';
import { syncTemporalSchedule } from './schedule-syncer';
import { fold, needsWorkflow } from '../core/service-call';
import { readCheckpoint, tryConsumerLock } from './relay';
import { startCallWorkflow, STARTER_NAME, type StartTarget } from './workflow-starter';

/**
 * The reconciler (ADR-0013): Postgres decides which calls must have a live workflow, Temporal is
 * asked about each, and the missing ones are started again, so a Temporal server that lost its
 * data makes calls late, not lost. It walks the unfinished calls of the read model page by page
 * (keyset on the partial index service_calls_live_idx) and describes each call's workflow by id:
 * visibility (list) is eventually consistent and could call a live workflow missing.
 */

export const RECONCILER_NAME = 'reconciler';

/** What the reconciler found for one unfinished call (the `result` label of its metric). */
type CallCheck =
  /** Its workflow is running. */
  | 'live'
  /** Its workflow was missing or closed (terminated, failed, timed out), and was started again. */
  | 'restarted'
  /** Submitted after the starter's checkpoint: the starter has yet to start it. */
  | 'awaiting_starter'
  /** Its workflow is closed and its record is terminal: the read model had not caught up. */
  | 'finished'
  /** Its workflow completed but its record is not terminal: not restarted (a bug to look at). */
  | 'completed_unfinished';

export interface PassReport {
  pages: number;
  checked: number;
  counts: Record<CallCheck, number>;
  /** Another relay held the reconciler's lock: this pass stopped there. */
  locked: boolean;
  /** Temporal Schedules made again for schedules Temporal did not know (ADR-0017). */
  schedulesRestored?: number;
}

interface ReconcilerOptions {
  db: Db;
  start: StartTarget;
  log: Logger;
  /** Time between the end of one pass and the start of the next (config.reconcileIntervalMs). */
  intervalMs: number;
  /** Calls per page: one transaction, one read of the page and one of its submit events. */
  pageSize?: number;
  /** Describes (and starts) in flight at once. */
  concurrency?: number;
  /** Longest a single describe or start may take before the pass gives up until the next one. */
  temporalTimeoutMs?: number;
  /**
   * Runs before each pass; a failure is logged and the pass goes on. The relay registers the
   * search attributes here: a Temporal server that lost its data lost them too.
   */
  beforePass?: () => Promise<void>;
}

export interface LiveCallKey {
  tenantId: string;
  id: string;
}

/**
 * One page of calls that need a live workflow (Scheduled or Running, or finished with a callback
 * pending: ADR-0016), in (tenant_id, id) order after `after`. The predicate is spelled out as
 * constants, as the partial index has it, so that the planner can prove it (a parameter would not
 * let it).
 */
export async function readLivePage(db: DbOrTx, after: LiveCallKey | undefined, limit: number): Promise<LiveCallKey[]> {
  const from = after === undefined ? sql`` : sql`and (tenant_id, id) > (${after.tenantId}, ${after.id}::uuid)`;
  const { rows } = await db.execute<{ tenant_id: string; id: string }>(sql`
    select tenant_id, id from service_calls
    where (status in ('Scheduled', 'Running') or callback_status = 'Pending') ${from}
    order by tenant_id, id
    limit ${limit}`);
  return rows.map((r) => ({ tenantId: r.tenant_id, id: r.id }));
}

function isAfter(event: StoredEvent, at: LogPosition): boolean {
  const tx = BigInt(event.tx);
  const checkpoint = BigInt(at.tx);
  return tx > checkpoint || (tx === checkpoint && event.globalPosition > at.globalPosition);
}

async function inParallel<T, R>(items: readonly T[], concurrency: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await task(items[i]!);
    }),
  );
  return results;
}

const emptyCounts = (): Record<CallCheck, number> => ({
  live: 0,
  restarted: 0,
  awaiting_starter: 0,
  finished: 0,
  completed_unfinished: 0,
});

export class Reconciler {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<unknown> | undefined;
  private readonly pageSize: number;
  private readonly concurrency: number;
  private readonly temporalTimeoutMs: number;

  constructor(private readonly opts: ReconcilerOptions) {
    this.pageSize = opts.pageSize ?? 200;
    this.concurrency = opts.concurrency ?? 16;
    this.temporalTimeoutMs = opts.temporalTimeoutMs ?? 10_000;
  }

  /** A pass now, then one every intervalMs after the previous one ended. */
  start(): void {
    const round = () => {
      if (this.stopped) return;
      this.current = this.runPass()
        .catch((err: unknown) => this.opts.log.warn({ err, retryInMs: this.opts.intervalMs }, 'reconciler pass failed'))
        .finally(() => {
          this.current = undefined;
          if (!this.stopped) this.timer = setTimeout(round, this.opts.intervalMs);
        });
    };
    round();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }

  /** One walk over every unfinished call; each page runs under the reconciler's lock. */
  async runPass(): Promise<PassReport> {
    const started = Date.now();
    const report: PassReport = { pages: 0, checked: 0, counts: emptyCounts(), locked: false };
    try {
      if (this.opts.beforePass !== undefined) {
        await this.opts
          .beforePass()
          .catch((err: unknown) => this.opts.log.warn({ err }, 'reconciler: preparing a pass failed'));
      }
      let after: LiveCallKey | undefined;
      while (!this.stopped) {
        const page = await this.opts.db.transaction(async (tx) => {
          if (!(await tryConsumerLock(tx, RECONCILER_NAME))) return undefined;
          return this.reconcilePage(tx, after);
        });
        if (page === undefined) {
          report.locked = true;
          break;
        }
        report.pages++;
        report.checked += page.results.length;
        for (const r of page.results) report.counts[r]++;
        if (page.last === undefined || page.results.length < this.pageSize) break;
        after = page.last;
      }
      if (!this.stopped && !report.locked) report.schedulesRestored = await this.reconcileSchedules();
    } finally {
      reconcilerPassDuration.observe((Date.now() - started) / 1000);
    }
    const { live, ...rest } = report.counts;
    const summary = {
      schedulesRestored: report.schedulesRestored ?? 0,
      pages: report.pages,
      checked: report.checked,
      live,
      ...rest,
      locked: report.locked,
      ms: Date.now() - started,
    };
    if (Object.values(rest).some((n) => n > 0) || (report.schedulesRestored ?? 0) > 0)
      this.opts.log.info(summary, 'reconciler pass done');
    else this.opts.log.debug(summary, 'reconciler pass done');
    return report;
  }

  /**
   * The schedules' part of a pass (ADR-0017): every schedule not deleted must have its Temporal
   * Schedule. The syncer rewrites one only when its schedule gets an event, so one that Temporal
   * lost (its data gone) is made again here, from the stream; one that exists is left to the
   * syncer, whose state is never older than this pass's.
   */
  private async reconcileSchedules(): Promise<number> {
    const target = { client: this.opts.start.client, taskQueue: this.opts.start.taskQueue };
    const { client } = this.opts.start;
    let restored = 0;
    let after: LiveCallKey | undefined;
    while (!this.stopped) {
      const page = await this.opts.db.transaction(async (tx) => {
        if (!(await tryConsumerLock(tx, RECONCILER_NAME))) return undefined;
        const from = after === undefined ? sql`` : sql`and (tenant_id, id) > (${after.tenantId}, ${after.id}::uuid)`;
        const { rows } = await tx.execute<{ tenant_id: string; id: string }>(sql`
          select tenant_id, id from schedules where status <> 'Deleted' ${from}
          order by tenant_id, id limit ${this.pageSize}`);
        const keys = rows.map((r) => ({ tenantId: r.tenant_id, id: r.id }));
        const made = await inParallel(keys, this.concurrency, async (key) => {
          const handle = client.schedule.getHandle(temporalScheduleIdFor(key.tenantId, key.id));
          try {
            await client.connection.withDeadline(Date.now() + this.temporalTimeoutMs, () => handle.describe());
            return false;
          } catch (err) {
            if (!(err instanceof ScheduleNotFoundError)) throw err;
          }
          const { state } = await readSchedule(tx, key.tenantId, key.id);
          if (state === undefined || state.status === 'Deleted') return false;
          const what = await syncTemporalSchedule(target, state, { createOnly: true });
          if (what !== 'created') return false;
          reconcilerSchedulesRestored.inc();
          this.opts.log.info({ tenantId: key.tenantId, scheduleId: key.id }, 'reconciler restored temporal schedule');
          return true;
        });
        return { keys, restored: made.filter(Boolean).length };
      });
      if (page === undefined) break;
      restored += page.restored;
      if (page.keys.length < this.pageSize) break;
      after = page.keys[page.keys.length - 1];
    }
    return restored;
  }

  private async reconcilePage(
    tx: DbOrTx,
    after: LiveCallKey | undefined,
  ): Promise<{ results: CallCheck[]; last: LiveCallKey | undefined }> {
    const calls = await readLivePage(tx, after, this.pageSize);
    if (calls.length === 0) return { results: [], last: undefined };
    const submits = new Map(
      (
        await readFirstEvents(
          tx,
          calls.map((c) => streamIdFor(c.tenantId, c.id)),
        )
      )
        .filter((e): e is ServiceCallSubmitted & StoredEvent => e.type === 'ServiceCallSubmitted')
        .map((e) => [`${e.tenantId}/${e.aggregateId}`, e]),
    );
    const starterAt = await readCheckpoint(tx, STARTER_NAME);
    const results = await inParallel(calls, this.concurrency, async (call) => {
      const submitted = submits.get(`${call.tenantId}/${call.id}`);
      // A read-model row has its submit event; without one there is nothing to start from.
      if (submitted === undefined) return 'finished' as const;
      const result = await this.checkCall(tx, submitted, starterAt);
      reconcilerCallsChecked.inc({ result });
      return result;
    });
    return { results, last: calls[calls.length - 1] };
  }

  /** Asks Temporal about one call's workflow and starts it again if it must and may. */
  private async checkCall(
    tx: DbOrTx,
    submitted: ServiceCallSubmitted & StoredEvent,
    starterAt: LogPosition,
  ): Promise<CallCheck> {
    const { client } = this.opts.start;
    const workflowId = workflowIdFor(submitted.tenantId, submitted.aggregateId);
    const withDeadline = <T>(work: () => Promise<T>) =>
      client.connection.withDeadline(Date.now() + this.temporalTimeoutMs, work);
    let status: string | undefined;
    try {
      status = (await withDeadline(() => client.workflow.getHandle(workflowId).describe())).status.name;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    if (status === 'RUNNING') return 'live';
    const ids = {
      tenantId: submitted.tenantId,
      serviceCallId: submitted.aggregateId,
      workflowId,
      correlationId: submitted.correlationId,
      causationId: submitted.messageId,
    };
    if (status === undefined) {
      if (isAfter(submitted, starterAt)) return 'awaiting_starter';
      // Temporal does not know it (lost data, or past retention): start it as the starter would,
      // with the dueAt the stream holds now (a reschedule moved it; ADR-0012).
      const current = fold(await readStream(tx, streamIdFor(submitted.tenantId, submitted.aggregateId)));
      if (current === undefined || !needsWorkflow(current)) return 'finished';
      try {
        await withDeadline(() => startCallWorkflow(this.opts.start, submitted, 'REJECT_DUPLICATE', current.dueAt));
      } catch (err) {
        // It closed since the describe: the next pass looks again.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        return 'live';
      }
      reconcilerWorkflowsRestarted.inc({ reason: 'missing' });
      this.opts.log.info({ ...ids, reason: 'missing' }, 'reconciler restarted workflow');
      return 'restarted';
    }
    // Closed: the stream, not the read model (which may lag), says whether the call is finished.
    const state = fold(await readStream(tx, streamIdFor(submitted.tenantId, submitted.aggregateId)));
    if (state === undefined || !needsWorkflow(state)) return 'finished';
    try {
      // Only a run that did not complete (terminated, failed, timed out, cancelled) is replaced: a
      // completed one ended because its call had, by the workflow's own rule.
      await withDeadline(() =>
        startCallWorkflow(this.opts.start, submitted, 'ALLOW_DUPLICATE_FAILED_ONLY', state.dueAt),
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      this.opts.log.warn(
        { ...ids, workflowStatus: status, callStatus: state.status },
        'reconciler: workflow completed but its call is not finished; not restarted',
      );
      return 'completed_unfinished';
    }
    reconcilerWorkflowsRestarted.inc({ reason: 'closed' });
    this.opts.log.info(
      { ...ids, reason: 'closed', workflowStatus: status, callStatus: state.status },
      'reconciler restarted workflow',
    );
    return 'restarted';
  }
}
