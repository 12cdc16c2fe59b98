import { eq, sql } from 'drizzle-orm';
import pg from 'pg';
import { consumerCheckpoints } from '../drizzle/schema';
import type { Db, DbOrTx } from '../core/db';
import type { StoredEvent } from '../core/events';
import { EVENTS_CHANNEL, LOG_START, readLogAfter, type LogPosition } from '../core/event-store';
import type { Logger } from '../core/logger';

/**
 * The outbox relay (ADR-0004): every consumer reads the event log gap-free from its own
 * checkpoint. A transactional consumer (a projection) handles its batch and moves its
 * checkpoint in one transaction; an effectful one (the workflow starter) moves it after its
 * side effects succeeded, so they repeat after a crash and must be idempotent. One relay at a
 * time runs each consumer: the batch runs under a transaction-scoped advisory lock.
 */
export interface LogConsumer {
  name: string;
  /** true: `handle` writes through `tx`, in the transaction that saves the checkpoint. */
  transactional: boolean;
  handle(batch: StoredEvent[], tx: DbOrTx): Promise<void>;
}

interface RelayOptions {
  db: Db;
  databaseUrl: string;
  log: Logger;
  pollMs: number;
  batchSize?: number;
  /** Shortest time between the starts of two rounds of one consumer woken by appends (ms). */
  coalesceMs?: number;
}

/**
 * Appends wake the consumers; under a steady stream of them, a round per append would cost each
 * consumer its five to seven queries per event. Rounds woken sooner than this after the previous
 * one started wait for the rest of it and take what arrived meanwhile as one batch. Events that
 * come further apart than this are not delayed at all.
 */
const RELAY_COALESCE_MS = 20;

export async function readCheckpoint(db: DbOrTx, name: string): Promise<LogPosition> {
  const [row] = await db
    .select({ tx: consumerCheckpoints.tx, globalPosition: consumerCheckpoints.globalPosition })
    .from(consumerCheckpoints)
    .where(eq(consumerCheckpoints.name, name));
  return row ?? LOG_START;
}

/** Moves a consumer's checkpoint; callers hold its lock (a batch, or a projection rebuild's swap). */
export async function saveCheckpoint(db: DbOrTx, name: string, at: LogPosition): Promise<void> {
  await db
    .insert(consumerCheckpoints)
    .values({ name, tx: at.tx, globalPosition: at.globalPosition })
    .onConflictDoUpdate({
      target: consumerCheckpoints.name,
      set: { tx: at.tx, globalPosition: at.globalPosition, updatedAt: sql`now()` },
    });
}

/** Name of the advisory lock under which a consumer's batch runs (hashed with hashtext). */
export function consumerLockName(consumer: string): string {
  return `punctual-consumer:${consumer}`;
}

/**
 * Takes `consumer`'s lock for the rest of the transaction `tx`, if no other relay holds it: how
 * one relay at a time runs each consumer (and the reconciler). false: another one has it.
 */
export async function tryConsumerLock(tx: DbOrTx, consumer: string): Promise<boolean> {
  const locked = await tx.execute<{ ok: boolean }>(
    sql`select pg_try_advisory_xact_lock(hashtext(${consumerLockName(consumer)})) as ok`,
  );
  return locked.rows[0]?.ok === true;
}

/** Handles at most one batch for `consumer`; returns how many events it handled (-1: locked). */
export async function runConsumerOnce(db: Db, consumer: LogConsumer, batchSize: number): Promise<number> {
  return db.transaction(async (tx) => {
    if (!(await tryConsumerLock(tx, consumer.name))) return -1;
    const from = await readCheckpoint(tx, consumer.name);
    const batch = await readLogAfter(tx, from, batchSize);
    const last = batch[batch.length - 1];
    if (last === undefined) return 0;
    await consumer.handle(batch, consumer.transactional ? tx : db);
    await saveCheckpoint(tx, consumer.name, { tx: last.tx, globalPosition: last.globalPosition });
    return batch.length;
  });
}

interface WakeSignal {
  /** A wake-up came since the loop last cleared this. */
  woken: boolean;
  /** Ends the current sleep, while there is one. */
  wakeUp?: () => void;
}

export class Relay {
  private stopped = false;
  private listener: pg.Client | undefined;
  /** One per consumer loop, and one for the listener's reconnect pause. */
  private signals: WakeSignal[] = [];
  private loops: Promise<void>[] = [];
  private readonly batchSize: number;

  private readonly consumers: LogConsumer[];

  constructor(
    private readonly opts: RelayOptions,
    consumers: LogConsumer[],
  ) {
    this.batchSize = opts.batchSize ?? 500;
    // Every event a consumer takes is logged (debug) with the call's ids before it is handled.
    this.consumers = consumers.map((consumer) => ({
      ...consumer,
      handle: (batch, tx) => {
        if (opts.log.isLevelEnabled('debug')) {
          for (const e of batch) {
            opts.log.debug(
              {
                consumer: consumer.name,
                tenantId: e.tenantId,
                serviceCallId: e.aggregateId,
                eventType: e.type,
                version: e.version,
                correlationId: e.correlationId,
                causationId: e.messageId,
              },
              'event consumed',
            );
          }
        }
        return consumer.handle(batch, tx);
      },
    }));
  }

  start(): void {
    const listening: WakeSignal = { woken: false };
    this.signals = [listening];
    void this.listen(listening);
    this.loops = this.consumers.map((c) => {
      const signal: WakeSignal = { woken: false };
      this.signals.push(signal);
      return this.loop(c, signal);
    });
  }

  /**
   * Wakes every consumer now (a new event was appended). A consumer busy with a batch keeps the
   * wake-up and goes round again at once instead of sleeping: the event may have committed after
   * its read.
   */
  wake(): void {
    for (const signal of this.signals) {
      signal.woken = true;
      signal.wakeUp?.();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await Promise.all(this.loops);
    await this.listener?.end().catch(() => undefined);
  }

  /** Sleeps ms, or less if woken meanwhile; not at all if a wake-up came since the last round. */
  private sleep(signal: WakeSignal, ms: number): Promise<void> {
    if (signal.woken || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.wakeUp = done;
    });
  }

  private async loop(consumer: LogConsumer, signal: WakeSignal): Promise<void> {
    let failures = 0;
    const coalesceMs = this.opts.coalesceMs ?? RELAY_COALESCE_MS;
    while (!this.stopped) {
      try {
        // Cleared before reading: a wake-up that arrives during the batch is kept for the next round.
        signal.woken = false;
        const startedAt = Date.now();
        const handled = await runConsumerOnce(this.opts.db, consumer, this.batchSize);
        if (failures > 0) this.opts.log.info({ consumer: consumer.name }, 'consumer recovered');
        failures = 0;
        if (handled > 0) {
          this.opts.log.debug({ consumer: consumer.name, events: handled }, 'events consumed');
        }
        if (handled < this.batchSize) {
          await this.sleep(signal, handled === -1 ? this.opts.pollMs * 4 : this.opts.pollMs);
          const rest = startedAt + coalesceMs - Date.now();
          if (rest > 0 && !this.stopped) await new Promise((resolve) => setTimeout(resolve, rest));
        }
      } catch (err) {
        failures++;
        const backoff = Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
        this.opts.log.warn({ consumer: consumer.name, err, retryInMs: backoff }, 'consumer batch failed');
        signal.woken = false;
        await this.sleep(signal, backoff);
      }
    }
  }

  /** LISTEN for append notifications; reconnects after losing the connection. */
  private async listen(signal: WakeSignal): Promise<void> {
    while (!this.stopped) {
      const client = new pg.Client({
        connectionString: this.opts.databaseUrl,
        application_name: 'punctual-relay-listen',
      });
      try {
        const closed = new Promise<void>((resolve) => {
          client.on('error', () => resolve());
          client.on('end', () => resolve());
        });
        client.on('notification', () => this.wake());
        await client.connect();
        await client.query(`listen ${EVENTS_CHANNEL}`);
        this.listener = client;
        this.wake();
        await closed;
      } catch {
        // Postgres unreachable: polling carries on; try again shortly.
      }
      await client.end().catch(() => undefined);
      signal.woken = false;
      if (!this.stopped) await this.sleep(signal, 1_000);
    }
  }
}
